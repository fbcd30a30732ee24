//! The phone line end to end, with real peers: `voicebotd run` answers a call
//! from baresip (Debian `baresip-core`, headless, `aufile` plays the caller's
//! recorded speech, `sndfile` records what the bot said), the caller asks for
//! an agent, the bot stores the ticket and tries the agent queue, a scripted
//! agent desk on loopback answers "486 Busy Here", and the bot tells the
//! caller a colleague will call back and hangs up. The test then runs ASR on
//! what baresip decoded from the bot's RTP, reads the ticket back from the
//! outbox, and checks the headers the agent desk received.
//!
//! Skips (passing, with a note on stderr) when baresip is not installed;
//! `scripts/setup.sh` installs it, so CI runs it.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::peers::{Baresip, baresip_installed, busy_agent_desk};
use common::uac::wav_bytes;
use common::{Daemon, bin, fixture_call, free_port, scratch};

#[test]
fn a_caller_asks_for_an_agent_the_desk_is_busy_and_the_bot_promises_a_call_back() {
    if !baresip_installed() {
        return;
    }
    let dir = scratch("phone-busy");
    let (sip_port, desk_port) = (free_port(), free_port());
    let desk = busy_agent_desk(desk_port);
    let outbox = dir.join("outbox.db");
    let config = dir.join("voicebotd.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten_udp = \"127.0.0.1:{sip_port}\"\nlisten_tcp = \"\"\n\
             agent_queue = \"sip:agents@127.0.0.1:{desk_port}\"\ntransfer_mode = \"bridge\"\n\
             [fleet]\noutbox = \"{}\"\n[asr]\nlanguage = \"en\"\n",
            outbox.display()
        ),
    )
    .unwrap();
    let mut daemon = Daemon::start(&config, &[], SocketAddr::from(([127, 0, 0, 1], sip_port)));

    // The caller listens to the greeting (about 11 s), then asks for an agent.
    let mut caller = vec![0i16; 8000 * 14];
    caller.extend(fixture_call("agent-1.wav"));
    caller.extend(vec![0i16; 8000 * 40]);
    std::fs::write(dir.join("caller.wav"), wav_bytes(&caller)).unwrap();
    let mut baresip = Baresip::start(&dir, &dir.join("caller.wav"), "5550123", false);
    let reply = baresip.command("dial", &format!("sip:hotline@127.0.0.1:{sip_port}"));
    assert!(!reply.contains("\"ok\":false"), "dial: {reply}");

    // The hand-over: the agent desk gets our INVITE with the ticket's headers.
    let invite = desk
        .recv_timeout(Duration::from_secs(90))
        .unwrap_or_else(|_| panic!("no INVITE at the agent desk:\n{}", daemon.text()));
    let ticket_id = invite
        .lines()
        .find_map(|l| l.strip_prefix("X-Ticket-Id: "))
        .unwrap_or_else(|| panic!("no X-Ticket-Id in\n{invite}"))
        .trim()
        .to_owned();
    assert!(invite.contains("X-Escalation-Reason: requested"), "{invite}");
    assert!(invite.contains("X-Intent: human_agent"), "{invite}");
    assert!(invite.to_ascii_lowercase().contains("user-to-user:"), "{invite}");

    // After the busy desk, the bot promises a call-back and hangs up.
    assert!(daemon.wait_for("call ended", 1, Duration::from_secs(60)), "{}", daemon.text());
    let log = daemon.text();
    assert!(log.contains("outcome=\"escalated\"") || log.contains("outcome=escalated"), "{log}");
    baresip.quit();

    // The ticket was stored before the transfer; the call-back is a new ticket that replaces it.
    let show = |id: &str| -> serde_json::Value {
        let out = bin().arg("--config").arg(&config).args(["tickets", "show", id]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let ticket = show(&ticket_id);
    assert_eq!(ticket["reason"], "requested", "{ticket}");
    assert_eq!(ticket["channel"], "phone");
    assert_eq!(ticket["follow_up"], "transfer", "{ticket}");
    assert_eq!(ticket["caller_id"], "***0123", "masked caller id: {ticket}");
    let out = bin().arg("--config").arg(&config).args(["tickets", "list", "--json"]).output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    let other = listed
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .find(|id| *id != ticket_id)
        .unwrap_or_else(|| panic!("no call-back ticket in the outbox: {listed}"));
    let callback = show(&other);
    assert_eq!(callback["follow_up"], "call_back", "{callback}");
    assert_eq!(callback["replaces"].as_str(), Some(ticket_id.as_str()), "{callback}");

    // What the caller heard, recognised from the RTP baresip decoded.
    let heard = baresip.recording("dec");
    let out = bin().args(["transcribe", "--lang", "en"]).arg(&heard).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    for words in ["thanks for calling", "colleague", "call you back"] {
        assert!(text.contains(words), "the caller should have heard {words:?}; ASR heard: {text}");
    }
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
