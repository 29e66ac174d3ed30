#![cfg(unix)]
//! Whole-system tests: real `fastchat-server`, `fastchatd` and `fastchatctl` processes talking
//! over real TCP and local sockets.

mod chat;
mod daemon;
mod failover;
mod images;
mod keys;
mod notifications;
mod outbox;
mod support;
