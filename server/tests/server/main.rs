//! The server end to end: a real server on 127.0.0.1 port 0 with a real SQLite database in a
//! temporary folder, driven through the real server link.

#[macro_use]
mod support;

mod accounts;
mod announce;
mod attachments;
mod bad_input;
mod delivery;
mod durability;
mod groups;
mod multi;
mod tls;
