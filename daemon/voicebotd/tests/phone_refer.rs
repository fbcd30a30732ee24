//! The cold transfer end to end, with real peers: `voicebotd run` on its
//! default transfer mode (REFER) with a real mosquitto broker. A scripted
//! caller (`common::uac`, raw UDP SIP and real PCMU RTP) listens to the
//! greeting in silence, says "I want to speak to an agent please" (the bundled
//! 8 kHz recording), and plays the transferee: it takes the REFER, checks the
//! ticket id in `User-to-User` and the X- headers, answers 202 and a NOTIFY
//! with `SIP/2.0 200 OK`, and takes the daemon's BYE. A subscriber on
//! `voicebot/v1/+/+/event/ticket` must have received that same ticket before
//! the REFER arrived. The bot's RTP is decoded and recognised: the caller must
//! have heard the greeting and the hand-over promise.
//!
//! Skips (passing, with a loud note) when mosquitto is not installed;
//! `scripts/setup.sh` installs it, so CI runs it.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::uac::{self, Message, Uac};
use common::{Broker, Daemon, bin, fixture_call, free_udp_port, scratch};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

const TICKET_TOPIC: &str = "voicebot/v1/+/+/event/ticket";

/// What the test's own MQTT subscriber saw.
enum Seen {
    Subscribed,
    Publish { at: Instant, topic: String, payload: Vec<u8> },
}

/// Subscribes to the ticket topic on the broker; reports every publish with its arrival time.
fn subscribe(port: u16) -> mpsc::Receiver<Seen> {
    let mut options = MqttOptions::new("phone-refer-test", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut connection) = Client::new(options, 16);
    client.subscribe(TICKET_TOPIC, QoS::AtLeastOnce).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _client = client;
        for event in connection.iter() {
            let seen = match event {
                Ok(Event::Incoming(Packet::SubAck(_))) => Seen::Subscribed,
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    Seen::Publish { at: Instant::now(), topic: p.topic, payload: p.payload.to_vec() }
                }
                Ok(_) => continue,
                Err(_) => return,
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    });
    rx
}

/// Undoes RFC 3986 percent-encoding (a URI header value in Refer-To).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The ticket id in a `User-to-User` value `<hex>;encoding=hex;purpose=...`.
fn ticket_id_from_uui(value: &str) -> String {
    let hex = value.split(';').next().unwrap();
    assert!(hex.len().is_multiple_of(2) && hex.bytes().all(|b| b.is_ascii_hexdigit()), "not hex: {value}");
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_caller_asking_for_an_agent_is_referred_with_the_ticket_published_first() {
    let Some(broker) = Broker::start() else { return };
    let dir = scratch("phone-refer");
    let sip: std::net::SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let config = dir.join("voicebotd.toml");
    // Only what a test must change: ports, files, English. The transfer mode and
    // the agent queue stay the embedded defaults (cold REFER to sip:agents@127.0.0.1:5070).
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten_udp = \"{sip}\"\nlisten_tcp = \"\"\n\
             [fleet]\ndevice_id = \"refer-box\"\noutbox = \"{}\"\n[asr]\nlanguage = \"en\"\n[http]\nlisten = \"\"\n",
            dir.join("outbox.db").display()
        ),
    )
    .unwrap();
    let mut daemon =
        Daemon::start(&config, &["--mqtt-url", &format!("mqtt://127.0.0.1:{}", broker.port)], sip);
    let mqtt = subscribe(broker.port);
    assert!(
        matches!(mqtt.recv_timeout(Duration::from_secs(10)), Ok(Seen::Subscribed)),
        "the test's subscriber got no SUBACK"
    );

    let mut caller = Uac::new(sip, "refer-e2e-1", "5550142");
    let answered = caller.invite(Duration::from_secs(10)).unwrap();
    assert_eq!(answered.codes.last(), Some(&200), "{answered:?}\n{}", daemon.text());
    let media = caller.start_media();

    // Silence through the greeting (about 11 s), then the request.
    media
        .wait_until_bot_done(0, Duration::from_millis(1500), Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no greeting within 60 s\n{}", daemon.text()));
    media.say(&fixture_call("agent-1.wav"));

    // The REFER, answered as a transferee that reaches the agent.
    let until = Instant::now() + Duration::from_secs(60);
    let (refer, refer_at) = loop {
        let message = caller
            .recv(until.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|| panic!("no REFER within 60 s of the request\n{}", daemon.text()));
        if message.is_request("REFER") {
            break (message, Instant::now());
        }
        if message.status().is_none() && !message.is_request("ACK") {
            caller.respond(&message, 200, "OK");
        }
    };
    let refer_to = refer.header("Refer-To").expect("Refer-To");
    assert!(refer_to.starts_with("<sip:agents@127.0.0.1:5070?"), "the default agent queue: {refer_to}");
    let uui = percent_decode(
        refer_to.split_once("User-to-User=").unwrap_or_else(|| panic!("no User-to-User in {refer_to}")).1,
    );
    let uui = uui.trim_end_matches('>').split('&').next().unwrap().to_owned();
    assert!(uui.len() < 128, "RFC 7433 value under 128 characters: {uui}");
    let params: Vec<&str> = uui.split(';').skip(1).collect();
    assert!(params.contains(&"encoding=hex"), "{uui}");
    assert!(params.iter().any(|p| p.strip_prefix("purpose=").is_some_and(|v| !v.is_empty())), "{uui}");
    let ticket_id = ticket_id_from_uui(&uui);
    assert_eq!(ticket_id.len(), 26, "a ULID: {ticket_id}");
    let header = |name: &str| refer.header(name).unwrap_or_else(|| panic!("no {name} in\n{}", refer.0));
    assert_eq!(header("X-Ticket-Id"), ticket_id);
    assert_eq!(header("X-Intent"), "human_agent");
    assert_eq!(header("X-Escalation-Reason"), "requested");
    assert!(header("X-Priority").parse::<u8>().is_ok(), "X-Priority: {}", header("X-Priority"));
    assert!(!header("X-Emotion").is_empty());
    assert!(!refer.0.to_lowercase().contains("agent please"), "no transcript in SIP:\n{}", refer.0);

    caller.respond(&refer, 202, "Accepted");
    caller.notify_refer("SIP/2.0 200 OK\r\n");
    let until = Instant::now() + Duration::from_secs(20);
    let mut notify_answer = None;
    let bye: Message = loop {
        let message = caller.recv(until.saturating_duration_since(Instant::now())).unwrap_or_else(|| {
            panic!("no BYE after the NOTIFY (answer {notify_answer:?})\n{}", daemon.text())
        });
        if message.is_request("BYE") {
            break message;
        }
        if message.header("CSeq").is_some_and(|c| c.ends_with("NOTIFY")) {
            notify_answer = message.status();
        } else if message.status().is_none() && !message.is_request("ACK") {
            caller.respond(&message, 200, "OK");
        }
    };
    caller.respond(&bye, 200, "OK");
    let received = media.stop();
    assert_eq!(notify_answer, Some(200), "the NOTIFY was answered");
    assert!(daemon.wait_for("call ended", 1, Duration::from_secs(20)), "{}", daemon.text());
    let ended = daemon.log.iter().find(|(_, l)| l.contains("call ended")).unwrap().1.clone();
    assert!(ended.contains("escalated") && ended.contains("requested"), "{ended}");

    // The ticket on MQTT: the same id, published before the REFER arrived.
    let until = Instant::now() + Duration::from_secs(10);
    let (published_at, topic, ticket) = loop {
        match mqtt.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Seen::Publish { at, topic, payload }) => {
                let ticket: serde_json::Value = serde_json::from_slice(&payload).unwrap();
                if ticket["id"] == ticket_id.as_str() {
                    break (at, topic, ticket);
                }
            }
            Ok(Seen::Subscribed) => {}
            Err(_) => panic!("no ticket {ticket_id} on {TICKET_TOPIC}\n{}", daemon.text()),
        }
    };
    assert_eq!(topic, "voicebot/v1/default/refer-box/event/ticket");
    assert!(
        published_at < refer_at,
        "the ticket arrived on MQTT {:?} after the REFER",
        published_at.duration_since(refer_at)
    );
    eprintln!("ticket {ticket_id} on MQTT {:?} before the REFER", refer_at.duration_since(published_at));
    assert_eq!(ticket["reason"], "requested", "{ticket}");
    assert_eq!(ticket["channel"], "phone", "{ticket}");
    assert_eq!(ticket["caller_id"], "***0142", "masked caller id: {ticket}");
    assert!(ticket.to_string().to_lowercase().contains("agent"), "the transcript travels on MQTT: {ticket}");

    // What the caller heard, recognised from the daemon's RTP.
    let heard = dir.join("heard.wav");
    std::fs::write(&heard, uac::wav_bytes(&uac::decode(&received))).unwrap();
    let out = bin().args(["transcribe", "--lang", "en"]).arg(&heard).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    eprintln!("the caller heard: {text}");
    for words in ["thanks for calling", "colleague"] {
        assert!(text.contains(words), "the caller should have heard {words:?}; ASR heard: {text}");
    }
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
