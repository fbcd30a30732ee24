//! Signed jobs through a real mosquitto: a config update is applied and
//! persisted; unsigned, wrongly signed and replayed commands are rejected with
//! a result message and change nothing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::{Broker, Message, Subscriber, free_port, mosquitto, settings};
use ed25519_dalek::{Signer, SigningKey};
use rumqttc::QoS;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use voicebot_fleet::jobs::envelope::signed_message;
use voicebot_fleet::jobs::{JobContext, NoHooks};
use voicebot_fleet::{Fleet, now_ms};

const CMD: &str = "voicebot/v1/test/box-1/cmd/config_update";
const RESULT: &str = "voicebot/v1/test/box-1/cmd/config_update/result";

fn signed(key: &SigningKey, job: &Value) -> Vec<u8> {
    let text = job.to_string();
    let sig = key.sign(&signed_message(&text));
    json!({"job": text, "sig": base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())})
        .to_string()
        .into_bytes()
}

fn job(id: &str, nonce: &str, toml: &str) -> Value {
    json!({"job_id": id, "command": "config_update", "site": "test", "device": "box-1",
           "issued_at_ms": now_ms(), "nonce": nonce, "params": {"toml": toml}})
}

fn results_for(messages: &[Message], id: Option<&str>) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m.topic == RESULT)
        .map(Message::json)
        .filter(|v| v["job_id"].as_str() == id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_config_update_applies_and_bad_commands_are_rejected_changing_nothing() {
    let Some(bin) = mosquitto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&bin, dir.path(), free_port());
    let sub = Subscriber::connect(broker.port, "voicebot/v1/test/box-1/#").await;
    let fleet_key = SigningKey::from_bytes(&[11u8; 32]);
    let config_path = dir.path().join("voicebotd.toml");
    std::fs::write(&config_path, "[asr]\nthreads = 2\n").unwrap();
    let mut settings = settings(broker.port, &dir.path().join("outbox.db"));
    settings.policy.key = Some(fleet_key.verifying_key());
    let context = JobContext {
        config_path: Some(config_path.clone()),
        pack_path: None,
        model_dir: dir.path().join("models"),
        models_in_use: vec![],
        hooks: Arc::new(NoHooks),
    };
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    let _fleet = Fleet::start(settings, context, &tasks, shutdown.clone()).unwrap();
    sub.wait_until(Duration::from_secs(10), "birth", |m| m.iter().any(|m| m.topic.ends_with("/status")))
        .await;

    // Accepted: queued → in_progress → succeeded, persisted, reported.
    let good_toml = "[asr]\nthreads = 3\n";
    let accepted = signed(&fleet_key, &job("JOB-1", "nonce-good-1", good_toml));
    sub.client.publish(CMD, QoS::AtLeastOnce, false, accepted.clone()).await.unwrap();
    let got = sub
        .wait_until(Duration::from_secs(10), "JOB-1 to finish", |m| {
            results_for(m, Some("JOB-1")).iter().any(|r| r["status"] == "succeeded")
        })
        .await;
    let steps: Vec<String> =
        results_for(&got, Some("JOB-1")).iter().map(|r| r["status"].as_str().unwrap().to_owned()).collect();
    assert_eq!(steps, ["queued", "in_progress", "succeeded"]);
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), good_toml);
    let reported = got.iter().find(|m| m.topic.ends_with("/config/reported")).expect("config/reported");
    assert_eq!(reported.json()["job_id"], "JOB-1");
    let late = Subscriber::connect(broker.port, "voicebot/v1/test/box-1/config/reported").await;
    let kept = late.wait_until(Duration::from_secs(5), "retained config/reported", |m| !m.is_empty()).await;
    assert!(
        kept[0].retain
            && kept[0].json()["config_hash"] == voicebot_fleet::jobs::apply::config_hash(good_toml)
    );

    // Unsigned.
    let unsigned = json!({"job": job("JOB-2", "nonce-unsigned", "[asr]\nthreads = 4\n").to_string()});
    sub.client.publish(CMD, QoS::AtLeastOnce, false, unsigned.to_string()).await.unwrap();
    // Signed by someone else.
    let stranger = SigningKey::from_bytes(&[12u8; 32]);
    let forged = signed(&stranger, &job("JOB-3", "nonce-forged", "[asr]\nthreads = 5\n"));
    sub.client.publish(CMD, QoS::AtLeastOnce, false, forged).await.unwrap();
    // Replays: the nonce of JOB-1 under a new id, and an old timestamp.
    let replayed = signed(&fleet_key, &job("JOB-4", "nonce-good-1", "[asr]\nthreads = 6\n"));
    sub.client.publish(CMD, QoS::AtLeastOnce, false, replayed).await.unwrap();
    let mut stale = job("JOB-5", "nonce-stale", "[asr]\nthreads = 7\n");
    stale["issued_at_ms"] = json!(now_ms() - 3_600_000);
    sub.client.publish(CMD, QoS::AtLeastOnce, false, signed(&fleet_key, &stale)).await.unwrap();
    // Malformed.
    sub.client.publish(CMD, QoS::AtLeastOnce, false, "{{{").await.unwrap();
    // The accepted command again: idempotent, reports its status, runs nothing.
    sub.client.publish(CMD, QoS::AtLeastOnce, false, accepted).await.unwrap();

    let got = sub
        .wait_until(Duration::from_secs(10), "every rejection", |m| {
            let rejected =
                m.iter().filter(|m| m.topic == RESULT).filter(|m| m.json()["status"] == "rejected").count();
            let duplicate = results_for(m, Some("JOB-1")).iter().any(|r| r["duplicate"] == true);
            rejected == 5 && duplicate
        })
        .await;
    let message = |id: Option<&str>| -> String {
        let r = results_for(&got, id);
        assert_eq!(r.len(), 1, "{id:?}: {r:?}");
        assert_eq!(r[0]["status"], "rejected");
        r[0]["message"].as_str().unwrap().to_owned()
    };
    // Nothing in an unsigned or malformed command is trusted, not even its id.
    let anonymous: Vec<String> =
        results_for(&got, None).iter().map(|r| r["message"].as_str().unwrap().to_owned()).collect();
    assert!(anonymous.iter().any(|m| m.contains("unsigned")), "{anonymous:?}");
    assert!(anonymous.iter().any(|m| m.contains("bad signature")), "{anonymous:?}");
    assert!(anonymous.iter().any(|m| m.contains("malformed")), "{anonymous:?}");
    assert!(message(Some("JOB-4")).contains("replayed"));
    assert!(message(Some("JOB-5")).contains("stale"));
    let again: Vec<Value> =
        results_for(&got, Some("JOB-1")).into_iter().filter(|r| r["duplicate"] == true).collect();
    assert_eq!(again[0]["status"], "succeeded");
    assert_eq!(
        std::fs::read_to_string(&config_path).unwrap(),
        good_toml,
        "no rejected command changed the config"
    );
    shutdown.cancel();
}
