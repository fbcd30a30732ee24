//! Build script shared by the crates that link sherpa-onnx: adds run paths so
//! the binaries find `libsherpa-onnx-c-api.so` and its `libonnxruntime.so`
//! without LD_LIBRARY_PATH — next to the binary (where sherpa-rs copies them in
//! `target/`), in the installed layout `/usr/lib/voicebotd`, and in the
//! `SHERPA_LIB_PATH` the build used.

fn main() {
    println!("cargo:rerun-if-env-changed=SHERPA_LIB_PATH");
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../lib/voicebotd");
    if let Ok(path) = std::env::var("SHERPA_LIB_PATH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{path}/lib");
    }
}
