//! `verihook` as a process: configuration from the environment, signals, crashes.

mod crash;
mod env;
mod nodes;
mod shutdown;
mod support;
mod tools;
