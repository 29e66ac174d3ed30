//! The balancer's JSON-RPC methods and their types, shared by the balancer, the servers
//! that register with it, and the clients that ask it where to connect. (Plain serde types:
//! each side uses its own JSON-RPC machinery.)

use serde::{Deserialize, Serialize};

/// `pick {exclude?}` -> [`Picked`]: the server a new connection should use.
pub const PICK: &str = "pick";
/// `servers` -> `[ServerStatus]`.
pub const SERVERS: &str = "servers";
/// `register {id, addr}` -> `true`: a server announces itself.
pub const REGISTER: &str = "register";
/// `heartbeat {id, addr, cpu, connections}` -> `true`: every second from each server.
pub const HEARTBEAT: &str = "heartbeat";
/// `report {id}` -> `true`: a client could not use this server (outlier detection).
pub const REPORT: &str = "report";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickParams {
    /// Server ids not to pick (the one that just failed, for instance).
    #[serde(default)]
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Picked {
    pub id: String,
    pub addr: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub id: String,
    pub addr: String,
    pub healthy: bool,
    /// Recent CPU use of the server's host, 0 to 100.
    pub cpu: f32,
    pub connections: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    pub id: String,
    pub addr: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub id: String,
    pub addr: String,
    pub cpu: f32,
    pub connections: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub id: String,
}
