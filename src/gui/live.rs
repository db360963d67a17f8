//! What the views read and what they ask for: the state the background threads reported, and the
//! actions a view queues for the app to apply after the frame.

use super::history::History;
use crate::runtime::Settings;
use crate::runtime::cost_reader::CostSnapshot;
use crate::runtime::statement_reader::{StatementRequest, StatementSnapshot};
use crate::transmit::agent::{AgentStatus, Command};

/// What the background threads told the UI, as the views read it.
#[derive(Debug, Default)]
pub struct Live {
    /// This machine's id, once the agent started.
    pub machine_id: Option<String>,
    /// Why the agent is not running, if it is not.
    pub agent_error: Option<String>,
    /// Why the in-process billing worker or the cost feed view stopped, if one did.
    pub background_error: Option<String>,
    /// The agent's latest status.
    pub status: Option<AgentStatus>,
    /// The last hour of readings.
    pub history: History,
    /// The latest costs.
    pub costs: CostSnapshot,
    /// This machine's statements as last read.
    pub statements: StatementSnapshot,
}

/// Something a view asks for; applied after the frame.
#[derive(Debug)]
pub enum Action {
    /// A command for the agent.
    Agent(Command),
    /// Save these settings and restart with them.
    Apply(Box<Settings>),
    /// A request for the statement reader.
    Statements(StatementRequest),
    /// Write (true) or remove (false) the start-at-login entry.
    StartAtLogin(bool),
}
