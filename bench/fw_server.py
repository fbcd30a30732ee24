#!/usr/bin/env python3
"""faster-whisper peer for voicebot-bench.

Runs faster-whisper in-process and answers one JSON request per stdin line, so
the Rust bench can interleave it clip by clip with voicebotd (the two never run
at the same time). Audio arrives as a path to raw little-endian f32 samples at
16 kHz, exactly the samples voicebotd's engines get.

Request:  {"id": "jfk", "path": ".../jfk.16k.f32"}
Reply:    {"id": "jfk", "text": "...", "seconds": 0.55}
The first line written is {"ready": true, "load_seconds": ..., "versions": {...}}.

Settings mirror voicebotd's greedy decode: beam_size 1 (best_of 1 for the
temperature fallback, which stays on as in voicebotd's default), language en,
no timestamps, no VAD filter, no conditioning on previous text.
"""

import argparse
import json
import sys
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compute-type", default="int8")
    args = parser.parse_args()

    import ctranslate2
    import faster_whisper
    from faster_whisper import WhisperModel

    started = time.perf_counter()
    model = WhisperModel(
        args.model_dir,
        device="cpu",
        compute_type=args.compute_type,
        cpu_threads=args.threads,
        num_workers=1,
    )
    load_seconds = time.perf_counter() - started

    def transcribe(audio: np.ndarray) -> str:
        segments, _info = model.transcribe(
            audio,
            language="en",
            beam_size=1,
            best_of=1,
            without_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        # The generator does the decoding: consume it inside the timed span.
        return "".join(segment.text for segment in segments).strip()

    # One warm-up decode, as voicebotd's warm stream has had.
    transcribe(np.zeros(16000 * 2, dtype=np.float32))

    ready = {
        "ready": True,
        "load_seconds": load_seconds,
        "versions": {
            "faster_whisper": faster_whisper.__version__,
            "ctranslate2": ctranslate2.__version__,
            "python": sys.version.split()[0],
        },
        "compute_type": args.compute_type,
        "threads": args.threads,
    }
    print(json.dumps(ready), flush=True)

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        request = json.loads(line)
        audio = np.fromfile(request["path"], dtype="<f4")
        started = time.perf_counter()
        text = transcribe(audio)
        seconds = time.perf_counter() - started
        reply = {"id": request.get("id"), "text": text, "seconds": seconds}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
