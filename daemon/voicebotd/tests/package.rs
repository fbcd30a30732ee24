//! The .deb: `cross/build-deb.sh` (cargo-deb) packages this test build's binary; the
//! test checks its control data and contents with `dpkg-deb`, unpacks it into
//! a throwaway root, and runs the packaged binary from there: it must find its
//! packaged ONNX Runtime and sherpa-onnx through its rpath, accept the
//! packaged config, and recognise speech with the packaged runtime.
//!
//! cargo-deb is installed by `scripts/setup.sh`; without it the test is skipped
//! with a loud line, except under CI (`CI` set), where that is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::scratch;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cargo_deb_installed() -> bool {
    let found = Command::new("cargo").args(["deb", "--version"]).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "cargo-deb is missing in CI: scripts/setup.sh installs it");
        eprintln!(
            "\n######## SKIPPED: cargo-deb is not installed (cargo install cargo-deb --locked) ########\n"
        );
    }
    found
}

#[test]
fn the_deb_carries_the_binary_its_libraries_units_and_config_and_runs_from_an_unpacked_root() {
    if !cargo_deb_installed() {
        return;
    }
    let dir = scratch("package");
    let out_dir = dir.join("deb");
    run(Command::new(repo().join("cross/build-deb.sh"))
        .args(["--profile", "dev", "--no-build", "--output"])
        .arg(&out_dir));
    let deb = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb in the output directory");

    // Control data: dependencies, the config as a conffile, the maintainer scripts.
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    for needle in ["Package: voicebotd", "Depends:", "espeak-ng", "systemd", "postinst", "prerm", "postrm"] {
        assert!(info.contains(needle), "control lacks {needle:?}:\n{info}");
    }
    let conffiles = run(Command::new("dpkg-deb").arg("--info").arg(&deb).arg("conffiles"));
    assert_eq!(conffiles.trim(), "/etc/voicebotd/voicebotd.toml", "an upgrade keeps the operator's config");

    // Contents: what the unit and the daemon expect to find.
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for path in [
        "./usr/bin/voicebotd",
        "./usr/lib/voicebotd/libonnxruntime.so",
        "./usr/lib/voicebotd/libsherpa-onnx-c-api.so",
        "./lib/systemd/system/voicebotd.service",
        "./usr/lib/sysusers.d/voicebotd.conf",
        "./usr/lib/tmpfiles.d/voicebotd.conf",
        "./etc/voicebotd/voicebotd.toml",
        "./usr/share/voicebotd/models/fetch.py",
        "./usr/share/voicebotd/models/manifest.toml",
        "./usr/share/doc/voicebotd/MODEL-LICENSES.md",
    ] {
        assert!(contents.lines().any(|l| l.ends_with(path)), "the package lacks {path}:\n{contents}");
    }

    // Unpacked into a throwaway root, the binary runs from there, as installed:
    // no LD_LIBRARY_PATH (cargo sets one for tests that points at the build).
    let root = dir.join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let binary = root.join("usr/bin/voicebotd");
    let installed = |program: &Path| {
        let mut command = Command::new(program);
        command.env_remove("LD_LIBRARY_PATH");
        command
    };
    let libraries = run(installed(Path::new("ldd")).arg(&binary));
    let packaged = std::fs::canonicalize(root.join("usr/lib/voicebotd")).unwrap();
    for lib in ["libsherpa-onnx-c-api.so", "libonnxruntime.so"] {
        let resolved = libraries
            .lines()
            .find(|l| l.contains(lib))
            .and_then(|l| l.split("=> ").nth(1))
            .and_then(|rest| rest.split(" (").next())
            .and_then(|path| std::fs::canonicalize(path.trim()).ok())
            .unwrap_or_else(|| panic!("{lib} is not resolved: {libraries}"));
        assert!(resolved.starts_with(&packaged), "{lib} resolves outside the package: {libraries}");
    }
    assert!(!libraries.contains("not found"), "{libraries}");
    let version = run(installed(&binary).arg("--version"));
    assert!(version.starts_with("voicebotd "), "{version}");
    run(installed(&binary).arg("check-config").arg(root.join("etc/voicebotd/voicebotd.toml")));
    // Speech through the packaged runtime (the models come from the model cache).
    let wav = dir.join("hello.wav");
    run(installed(&binary).args(["say", "Your order arrives on Tuesday.", "--out"]).arg(&wav));
    let heard = run(installed(&binary).args(["transcribe", "--lang", "en"]).arg(&wav)).to_lowercase();
    assert!(heard.contains("tuesday"), "{heard}");
    let _ = std::fs::remove_dir_all(&dir);
}
