//! `verihook` as a process: configuration from the environment, signals, crashes.

mod crash;
mod env;
mod local_dev;
mod logs;
mod nodes;
mod recovery;
mod requests;
mod secrets;
mod shutdown;
mod support;
mod tools;
mod wrong_receivers;
