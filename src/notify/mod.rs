//! Telling people how a run ended: a Slack message built from the run report.
//!
//! `message` builds the payload and is pure. It must never print the webhook URL.

pub mod message;
