//! The views: they render the session model and call its methods.

pub mod chat;
pub mod dialogs;
pub mod login;
pub mod root;
mod widgets;
