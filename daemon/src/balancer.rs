//! The balancer's `servers` list, for the `servers` method.

use std::time::Duration;

use fastchat_proto::balancer::{SERVERS, ServerStatus};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;

pub async fn servers(balancer: &str) -> Result<Vec<ServerStatus>, jsonrpsee::core::ClientError> {
    let client = HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(5))
        .build(format!("http://{balancer}"))?;
    client.request(SERVERS, rpc_params![]).await
}
