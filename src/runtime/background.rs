//! Everything the desktop app runs behind its views, behind one handle: the supervisor (agent,
//! in-process worker, cost feed view) and the cost reader. The views send commands and a cost
//! selection, and take the events; they own no thread, file or socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryIter};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::cost_reader::{self as costs, CostQuery};
use super::supervisor::{self, Control, Event, Notifier, Waker};
use super::{AgentOverrides, ReadingSource, Settings};
use crate::transmit::agent::Command;

/// The app's background threads; dropping it stops them (the agent delivers what it can first).
pub struct Background {
    controls: Sender<Control>,
    events: Receiver<Event>,
    supervisor: Option<JoinHandle<()>>,
    readings_shown: Arc<AtomicBool>,
    cost_query: Arc<Mutex<CostQuery>>,
    cost_wake: Option<Sender<()>>,
    cost_thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts the agent and the cost reader for `settings`; `wake` is called when there is news.
    /// An error only when the system will not start a thread.
    pub fn start(settings: &Settings, overrides: AgentOverrides, source: ReadingSource, wake: Waker) -> std::io::Result<Background> {
        let (event_sender, events) = mpsc::channel();
        let readings_shown = Arc::new(AtomicBool::new(true));
        let notifier = Notifier::new(event_sender, wake, Arc::clone(&readings_shown));
        let (cost_wake, wake_receiver) = mpsc::channel();
        let (controls, control_receiver) = mpsc::channel();
        let supervisor =
            supervisor::spawn_supervisor(settings.clone(), overrides, source, control_receiver, notifier.clone(), cost_wake.clone())?;
        let cost_query = Arc::new(Mutex::new(CostQuery::for_settings(settings)));
        let cost_thread = costs::spawn(Arc::clone(&cost_query), wake_receiver, move |snapshot| notifier.send(Event::Costs(snapshot)))?;
        Ok(Background {
            controls,
            events,
            supervisor: Some(supervisor),
            readings_shown,
            cost_query,
            cost_wake: Some(cost_wake),
            cost_thread: Some(cost_thread),
        })
    }

    /// The events that arrived since the last call.
    pub fn events(&self) -> TryIter<'_, Event> {
        self.events.try_iter()
    }

    /// Passes `command` to the running agent.
    pub fn command(&self, command: Command) {
        let _ = self.controls.send(Control::Command(command));
    }

    /// Saves `settings` and restarts with them; [`Event::Saved`] tells the outcome.
    pub fn apply(&self, settings: Settings, overrides: AgentOverrides) {
        let _ = self.controls.send(Control::Apply(Box::new(settings), overrides));
    }

    /// Reads costs from where `settings` (just saved) keeps them.
    pub fn follow(&self, settings: &Settings) {
        *self.cost_query.lock().expect("the cost query lock") = CostQuery::for_settings(settings);
        self.wake_cost_reader();
    }

    /// Whether readings should wake the views (only a view that draws them wants that).
    pub fn show_readings(&self, shown: bool) {
        self.readings_shown.store(shown, Ordering::Relaxed);
    }

    fn wake_cost_reader(&self) {
        if let Some(wake) = &self.cost_wake {
            let _ = wake.send(());
        }
    }

    /// Stops the agent (delivering for up to 5 s what it can) and the readers; waits for them.
    pub fn shut_down(&mut self) {
        let _ = self.controls.send(Control::Shutdown);
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.join();
        }
        self.cost_wake = None;
        if let Some(reader) = self.cost_thread.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.shut_down();
    }
}
