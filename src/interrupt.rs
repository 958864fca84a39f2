//! SIGINT/SIGTERM handling: the runner never dies mid-statement by our own hand.
//!
//! A signal sets a flag that the runner checks before each migration (and the
//! drivers before each statement), and asks the server to cancel the statement
//! that is running, so the run rolls back, releases its lock, reports and exits
//! 130/143 well inside ECS's stop timeout. Connecting and every wait end at
//! once (`Interrupt::wait`, `Interrupt::sleep`). A second signal exits at once.

use std::sync::{Arc, Mutex, OnceLock};

use futures_util::future::BoxFuture;
use tokio::sync::Notify;

use migrator_core::error::{Error, ExitStatus, Signal};

type Canceller = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Clone, Default)]
pub struct Interrupt(Arc<Inner>);

#[derive(Default)]
struct Inner {
    signal: OnceLock<Signal>,
    canceller: Mutex<Option<Canceller>>,
    notify: Notify,
}

impl Interrupt {
    /// The signal received, if any.
    pub fn signal(&self) -> Option<Signal> {
        self.0.signal.get().copied()
    }

    /// Records a signal and cancels the running statement (the first signal only).
    pub async fn trigger(&self, signal: Signal) {
        if self.0.signal.set(signal).is_err() {
            return;
        }
        self.0.notify.notify_waiters();
        let canceller = self.0.canceller.lock().expect("canceller lock").clone();
        if let Some(cancel) = canceller {
            cancel().await;
        }
    }

    /// Installs how to cancel the statement in flight (set once connected).
    pub fn set_canceller(&self, cancel: Canceller) {
        *self.0.canceller.lock().expect("canceller lock") = Some(cancel);
    }

    /// Resolves once a signal has been received.
    pub async fn wait(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.signal().is_some() {
                return;
            }
            notified.await;
        }
    }

    /// Resolves `grace` after a signal: how long a step that was asked to stop
    /// (its statement cancelled) may take to end by itself before it is
    /// abandoned. A dead link never answers the cancel.
    pub async fn grace(&self, grace: std::time::Duration) {
        self.wait().await;
        tokio::time::sleep(grace).await;
    }

    /// Sleeps for `pause`, or less when a signal comes: `Err` names what was
    /// being waited for, as the error every cut-short wait reports.
    pub async fn sleep(&self, pause: std::time::Duration, waiting_for: &str) -> Result<(), Error> {
        tokio::select! {
            _ = tokio::time::sleep(pause) => Ok(()),
            _ = self.wait() => Err(self.interrupted(format!("while waiting for {waiting_for}"))),
        }
    }

    /// Runs `work` unless a signal comes first: then its error says what was
    /// cut short (`while {doing}`). For the steps that have no statement to
    /// cancel: connecting, AWS calls.
    pub async fn cut<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, Error>>,
        doing: &str,
    ) -> Result<T, Error> {
        tokio::select! {
            done = work => done,
            _ = self.wait() => Err(self.interrupted(format!("while {doing}"))),
        }
    }

    /// The error of a run stopped by the signal received (SIGTERM if none was,
    /// which only a caller that saw `wait` resolve can reach).
    pub fn interrupted(&self, detail: String) -> Error {
        Error::Interrupted {
            signal: self.signal().unwrap_or(Signal::Sigterm),
            detail: Some(detail),
        }
    }

    /// Starts listening for SIGINT and SIGTERM in the background.
    pub fn listen(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                tracing::warn!("cannot install signal handlers; SIGTERM will kill the run");
                return;
            };
            loop {
                let got = tokio::select! {
                    _ = int.recv() => Signal::Sigint,
                    _ = term.recv() => Signal::Sigterm,
                };
                if this.signal().is_some() {
                    tracing::error!(signal = %got, "second signal: exiting now");
                    let code = match got {
                        Signal::Sigint => ExitStatus::Interrupted,
                        Signal::Sigterm => ExitStatus::Terminated,
                    };
                    std::process::exit(code.code().into());
                }
                tracing::warn!(
                    signal = %got,
                    "stopping: no further step starts; a connection attempt or running statement is cancelled"
                );
                let this = this.clone();
                tokio::spawn(async move { this.trigger(got).await });
            }
        });
    }
}
