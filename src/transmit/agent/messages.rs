//! What goes into the agent (readings, the person's commands) and what comes out (its status, its
//! problems), as the app, the CLI and the tests see them.

use std::time::Duration;

use crate::collect::Reading;
use crate::kafka::LinkState;
use crate::record::UnixMillis;
use crate::transmit::rule::ThresholdRule;

/// What the person (or the process) asks of the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Close the window now and send it with everything waiting, even while paused.
    SendNow,
    /// Hold records in the outbox.
    Pause,
    /// Send what is held, in order, and go on sending.
    Resume,
    /// Auto-send every this long (`None`: off).
    SetInterval(Option<Duration>),
    /// Replace the threshold rules.
    SetRules(Vec<ThresholdRule>),
    /// Close the window, try to deliver for a few seconds, keep the rest, stop.
    Stop,
}

/// Everything that reaches the agent thread.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A reading of the machine.
    Reading(Reading),
    /// A command.
    Command(Command),
}

/// The last delivery the agent saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySummary {
    /// When the reports arrived.
    pub at: UnixMillis,
    /// Records in that delivery.
    pub records: u64,
}

/// What keeps the agent from its job right now; each kind is cleared by its own kind of success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Closed windows cannot be written to the outbox (a full disk, an I/O error): they wait in memory.
    OutboxWrite {
        /// Why the write failed.
        error: String,
        /// Whether the disk is full.
        disk_full: bool,
        /// Windows waiting in memory.
        held: usize,
    },
    /// The outbox cannot be read or updated, so nothing more is offered until it can.
    Outbox(String),
    /// A send failed or was refused; the records stay in the outbox and go again.
    Send(String),
}

impl Problem {
    /// What happened and what the agent does about it, in plain words (the library's words are
    /// [`Problem::details`]).
    pub fn plain(&self) -> String {
        match self {
            Problem::OutboxWrite { disk_full: true, held, .. } => {
                format!("The disk is full: {held} window(s) wait in memory until the outbox can be written. Free some space.")
            }
            Problem::OutboxWrite { held, .. } => format!("The outbox can't be written: {held} window(s) wait in memory; retrying."),
            Problem::Outbox(_) => "The outbox can't be read: nothing more is sent until it can; retrying.".to_owned(),
            Problem::Send(_) => "Can't deliver to the brokers: the records stay in the outbox and go again.".to_owned(),
        }
    }

    /// The underlying error, as the library said it.
    pub fn details(&self) -> &str {
        match self {
            Problem::OutboxWrite { error, .. } => error,
            Problem::Outbox(error) | Problem::Send(error) => error,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::OutboxWrite { error, disk_full, held } => {
                let note = if *disk_full { "disk full; " } else { "" };
                write!(f, "outbox: {note}{error}; {held} window(s) held in memory until it can be written")
            }
            Problem::Outbox(error) => write!(f, "{error}; nothing more is sent until the outbox can be read"),
            Problem::Send(reason) => write!(f, "send failed: {reason}; the records are kept in the outbox and retried"),
        }
    }
}

/// A snapshot of the agent for the app and the log.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentStatus {
    /// This machine.
    pub machine_id: String,
    /// Link to the broker (or embedded).
    pub link: LinkState,
    /// Sending held.
    pub paused: bool,
    /// Auto-send interval.
    pub interval: Option<Duration>,
    /// Threshold rules in force.
    pub rules: Vec<ThresholdRule>,
    /// Records waiting in the outbox (including those held in memory on a full disk).
    pub outbox_depth: u64,
    /// The most recent delivery.
    pub last_delivery: Option<DeliverySummary>,
    /// Records delivered since the agent started.
    pub delivered_total: u64,
    /// Records delivered on this UTC day, by this and earlier runs on this machine.
    pub delivered_today: u64,
    /// Start of the open window.
    pub window_start: UnixMillis,
    /// Seq the open window will get.
    pub next_seq: u64,
    /// The latest problem (a failed send, a full disk), cleared when it is over.
    pub problem: Option<Problem>,
    /// The outbox hit its size bound and merged windows (count of merges so far).
    pub merged_windows: u64,
    /// Threshold-rule episodes so far: a rule firing after its condition had stopped holding
    /// (however many windows one episode closes).
    pub threshold_episodes: u64,
    /// The rule of the latest episode.
    pub last_threshold: Option<ThresholdRule>,
    /// Since when the broker has been unreachable, while it is.
    pub down_since: Option<UnixMillis>,
    /// When the waiting records are offered again, while the broker is unreachable.
    pub next_try: Option<UnixMillis>,
}

/// What the agent tells its observers.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A reading, for the live charts.
    Reading(Reading),
    /// A changed snapshot.
    Status(AgentStatus),
}
