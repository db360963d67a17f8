//! The desktop app's statement reader thread: it reads this machine's account, the draft of its open
//! period and its final statements, and writes a statement's PDF or CSV into the data dir when the
//! Statements tab asks. In embedded mode everything comes from the local ledger; with brokers from
//! the statement topic and the costs topic (see `runtime::statements`). It reads when the tab is
//! opened and every [`REFRESH`] while it stays open; a failed read keeps what was read before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::statement_files::{self, FileKind, StatementFile};
use super::{Settings, statements};
use crate::billing::rate_card::RateCard;
use crate::billing::statement::{Account, Period, Statement, StatementRow};
use crate::record::UnixMillis;

/// How often the statements are read again while the tab is open. Statements change slowly (a
/// draft as records are billed, a final one once a month), and with brokers each read
/// materialises the costs topic: half a minute keeps the draft current at little cost.
pub const REFRESH: Duration = Duration::from_secs(30);

/// What the Statements tab asks of the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementRequest {
    /// Read the statements again now.
    Refresh,
    /// Write final statement `number` as a PDF into the data dir and open it.
    OpenPdf(u64),
    /// Write final statement `number` as CSV into the data dir.
    ExportCsv(u64),
}

/// What the reader reads for; shared with the thread, which takes a copy at each read.
#[derive(Debug, Clone)]
pub struct StatementQuery {
    /// The settings in force.
    pub settings: Settings,
    /// This machine's id, once known (configured, or the agent's).
    pub machine_id: Option<String>,
}

/// Where the statements stand.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum StatementState {
    /// Nothing read yet.
    #[default]
    Loading,
    /// Read.
    Ready,
    /// The brokers could not be reached; what was read before is kept. The message says why.
    Offline(String),
    /// The statements could not be read (a bad rate card, a damaged ledger); the message says why.
    Failed(String),
}

/// The open period of this machine's account.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenPeriod {
    /// The period.
    pub period: Period,
    /// When it closes (its end plus the grace period).
    pub closes_at: UnixMillis,
}

/// This machine's account and its statements, as last read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatementSnapshot {
    /// Where the statements stand.
    pub state: StatementState,
    /// This machine's id; none until the agent started (or the id is configured).
    pub machine_id: Option<String>,
    /// The account this machine bills to in the open period.
    pub account: Option<Account>,
    /// The period now open.
    pub open: Option<OpenPeriod>,
    /// The account's drafts of the periods still open (the previous one during its grace), oldest first.
    pub drafts: Vec<StatementRow>,
    /// The account's final statements, newest first.
    pub finals: Vec<StatementRow>,
    /// Stored statements that failed their checks, each named.
    pub skipped: Vec<String>,
    /// When what is shown was read; none before the first good read.
    pub read_at: Option<UnixMillis>,
}

/// What the reader tells the views.
#[derive(Debug)]
pub enum StatementNews {
    /// The statements, read again (or why they could not be).
    Read(Box<StatementSnapshot>),
    /// A statement's file written (and opened), or why not.
    File(StatementFile),
}

/// Starts the reader. It reads on [`StatementRequest::Refresh`] and then every [`REFRESH`] while
/// `shown`; it hands each snapshot and file outcome to `send` (false: the views are gone) and stops
/// when `requests`' sender is dropped.
pub fn spawn(
    query: Arc<Mutex<StatementQuery>>,
    requests: Receiver<StatementRequest>,
    shown: Arc<AtomicBool>,
    send: impl Fn(StatementNews) -> bool + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("app-statements".into()).spawn(move || {
        let mut reader = Reader::default();
        // Nothing is read before the tab first asks: with brokers a read is a few consumers.
        let mut due: Option<Instant> = None;
        // A read was asked for (the tab opened, new settings, the agent's id): it happens even if
        // the tab was closed again meanwhile.
        let mut asked = false;
        loop {
            let wait = due.map_or(Duration::from_secs(3600), |due| due.saturating_duration_since(Instant::now()));
            let sent = match requests.recv_timeout(wait) {
                Ok(StatementRequest::Refresh) => {
                    (due, asked) = (Some(Instant::now()), true);
                    true
                }
                Ok(StatementRequest::OpenPdf(number)) => send(StatementNews::File(reader.write(&query, number, FileKind::Pdf))),
                Ok(StatementRequest::ExportCsv(number)) => send(StatementNews::File(reader.write(&query, number, FileKind::Csv))),
                Err(RecvTimeoutError::Timeout) => true,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if !sent {
                return;
            }
            if due.is_some_and(|due| Instant::now() >= due) {
                // A closed tab does not keep the reader busy; opening it again asks for a read.
                let shown = shown.load(Ordering::Relaxed);
                due = shown.then(|| Instant::now() + REFRESH);
                if !shown && !asked {
                    continue;
                }
                asked = false;
                let wanted = query.lock().expect("the statement query lock").clone();
                reader.read(&wanted);
                if !send(StatementNews::Read(Box::new(reader.snapshot.clone()))) {
                    return;
                }
            }
        }
    })
}

/// The last read, and the full final statements behind its rows (for writing their files).
#[derive(Default)]
struct Reader {
    snapshot: StatementSnapshot,
    finals: Vec<Statement>,
}

/// One good read.
struct Read {
    account: Option<Account>,
    open: OpenPeriod,
    drafts: Vec<Statement>,
    finals: Vec<Statement>,
    skipped: Vec<String>,
}

impl Reader {
    fn read(&mut self, query: &StatementQuery) {
        let now = UnixMillis::now();
        let machine_id = query.machine_id.clone().or_else(|| stored_machine_id(&query.settings));
        self.snapshot.machine_id = machine_id.clone();
        match read(&query.settings, machine_id.as_deref(), now) {
            Ok(read) => {
                self.snapshot = StatementSnapshot {
                    state: StatementState::Ready,
                    machine_id,
                    account: read.account,
                    open: Some(read.open),
                    drafts: read.drafts.iter().map(row_of).collect(),
                    finals: read.finals.iter().map(row_of).collect(),
                    skipped: read.skipped,
                    read_at: Some(now),
                };
                self.finals = read.finals;
            }
            Err(error) if !query.settings.embedded() && unreachable(&error) => {
                self.snapshot.state = StatementState::Offline(format!("{error:#}"));
            }
            Err(error) => self.snapshot.state = StatementState::Failed(format!("{error:#}")),
        }
    }

    /// Writes final statement `number`'s file, from the statements of the last good read (the rows
    /// the tab shows come from it).
    fn write(&self, query: &Mutex<StatementQuery>, number: u64, kind: FileKind) -> StatementFile {
        let data_dir = query.lock().expect("the statement query lock").settings.data_dir.clone();
        let outcome = match self.finals.iter().find(|statement| statement.number == Some(number)) {
            Some(statement) => statement_files::write(&data_dir.join("statements"), statement, kind),
            None => Err(format!("statement {number} is not among the statements read for this machine's account")),
        };
        StatementFile { number, kind, outcome }
    }
}

/// `statement`'s row, its total written to the currency's minor unit as the statement states it
/// (`0.50`, not `0.5`; the amount is the same).
fn row_of(statement: &Statement) -> StatementRow {
    let mut row = StatementRow::of(statement);
    row.total.rescale(statement.minor_unit_digits);
    row
}

/// The id the agent keeps in the data dir, without making one: making it is the agent's, and two
/// threads making one at once would each pick their own.
fn stored_machine_id(settings: &Settings) -> Option<String> {
    if let Some(configured) = &settings.config.agent.machine_id {
        return Some(configured.clone());
    }
    settings.data_dir.join("machine-id").exists().then(|| super::machine_id(None, &settings.data_dir).ok()).flatten()
}

fn read(settings: &Settings, machine_id: Option<&str>, now: UnixMillis) -> anyhow::Result<Read> {
    let current = settings.cycle().period_of(now);
    let open = OpenPeriod { period: current, closes_at: settings.cycle().closes_at(current) };
    let account = machine_id.map(|machine| settings.accounts().account_of(machine, current.start()));
    // Embedded mode before the first record is billed: no ledger, so no statements (opening one
    // here would make the file under the agent's feet).
    if machine_id.is_none() || (settings.embedded() && !settings.ledger_path().exists()) {
        return Ok(Read { account, open, drafts: Vec::new(), finals: Vec::new(), skipped: Vec::new() });
    }
    let machine = machine_id.unwrap_or_default();
    let card = RateCard::load(settings.config.worker.rate_card.as_deref())?;
    let (issued, skipped) = statements::issued(settings)?;
    let drafts = statements::open_drafts(settings, &card, &issued, now)?;
    let ours = |statement: &Statement| settings.accounts().account_of(machine, statement.period_start).id == statement.account.id;
    let drafts: Vec<Statement> = drafts.into_iter().filter(|draft| ours(draft)).collect();
    let mut finals: Vec<Statement> = issued.statements().filter(|statement| ours(statement)).cloned().collect();
    finals.sort_by_key(|statement| std::cmp::Reverse(statement.number));
    Ok(Read { account, open, drafts, finals, skipped })
}

/// Whether `error` is librdkafka failing to reach the brokers (as against refusing something).
fn unreachable(error: &anyhow::Error) -> bool {
    let offline = [
        RDKafkaErrorCode::BrokerTransportFailure,
        RDKafkaErrorCode::AllBrokersDown,
        RDKafkaErrorCode::OperationTimedOut,
        RDKafkaErrorCode::RequestTimedOut,
        RDKafkaErrorCode::Resolve,
        RDKafkaErrorCode::NetworkException,
        RDKafkaErrorCode::BrokerNotAvailable,
    ];
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<KafkaError>())
        .any(|kafka| kafka.rdkafka_error_code().is_some_and(|code| offline.contains(&code)))
}
