//! `GET /_node`: who this node is — its code version, the machine it runs on and its effective
//! configuration, secrets withheld — so a benchmark run records how every node was set up.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::config::NodeConfig;
use crate::router::AppState;

pub async fn node_info(State(state): State<AppState>) -> Json<Value> {
    // /proc reads are quick but blocking.
    let hardware = tokio::task::spawn_blocking(crate::host::hardware)
        .await
        .ok();
    Json(json!({
        "node_id": state.node.config.node_id,
        "version": crate::host::version(),
        "hardware": hardware,
        "config": config_without_secrets(&state.node.config),
    }))
}

/// The config as every layer resolved it, with the cluster token replaced by whether it is
/// set: the endpoint needs no token, and anyone holding the token could call the cluster's
/// internal endpoints. (The embedding API key is never serialized at all.)
pub fn config_without_secrets(config: &NodeConfig) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    if let Some(token) = value.pointer_mut("/cluster/token") {
        let set = token.as_str().is_some_and(|t| !t.is_empty());
        *token = Value::String(if set { "(set, withheld)" } else { "(not set)" }.into());
    }
    value
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::ConfigOverrides;

    #[test]
    fn the_token_and_the_api_key_never_leave_the_node() {
        let env: HashMap<String, String> = [
            ("SV_CLUSTER_TOKEN", "secret-token-0123456789"),
            ("OPENAI_API_KEY", "sk-secret-key"),
            ("SV_HNSW_EF_SEARCH", "77"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = NodeConfig::load(None, &env, &ConfigOverrides::default()).unwrap();
        assert_eq!(config.cluster.token, "secret-token-0123456789");
        let shown = config_without_secrets(&config);
        let text = shown.to_string();
        assert!(!text.contains("secret-token"), "{text}");
        assert!(!text.contains("sk-secret"), "{text}");
        assert_eq!(shown["cluster"]["token"], "(set, withheld)");
        // The rest is the effective config, every layer applied.
        assert_eq!(shown["vector"]["ef_search"], 77);
        assert_eq!(shown["node_id"], config.node_id);
    }
}
