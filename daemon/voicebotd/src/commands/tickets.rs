//! `voicebotd tickets list|show ID`: the local hand-over outbox, read beside a
//! running daemon (SQLite WAL lets readers in while it writes). Works with no
//! broker configured: that is where tickets wait.

use voicebot_core::config::Config;
use voicebot_fleet::outbox::{Outbox, default_path};

use crate::cli::TicketsAction;
use crate::error::CliError;

pub(crate) fn run(config: &Config, action: &TicketsAction) -> Result<(), CliError> {
    let path = config.fleet.outbox.clone().unwrap_or_else(default_path);
    let outbox = Outbox::open_existing(&path)?;
    match action {
        TicketsAction::List { json, limit } => {
            let tickets = outbox.list(*limit)?;
            if *json {
                for t in &tickets {
                    println!("{}", serde_json::to_string(t).unwrap_or_default());
                }
            } else {
                let stats = outbox.stats()?;
                println!(
                    "{}: {} tickets, {} not yet delivered, {} evicted, {} expired",
                    path.display(),
                    stats.tickets,
                    stats.backlog,
                    stats.evicted,
                    stats.expired
                );
                for t in &tickets {
                    let state = if t.delivered_ms.is_some() { "delivered" } else { "pending" };
                    println!("{}  {:<9}  {}", t.id, state, t.summary);
                }
            }
            Ok(())
        }
        TicketsAction::Show { id } => match outbox.get(id)? {
            Some((_, json)) => {
                println!("{}", String::from_utf8_lossy(&json));
                Ok(())
            }
            None => Err(CliError::BadInput(format!("no ticket {id} in the outbox {}", path.display()))),
        },
    }
}
