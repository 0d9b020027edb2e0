//! Authentication and permissions (cluster spec 4.1, 10.2, Appendix B): a node with
//! an nkey seed file and the node permission template (replies under `_INBOX_<node>`)
//! binds, joins, claims, transitions and watches; writing another node's lease is
//! refused by the server, which shows as a timeout plus a server error event (trap 6);
//! user/password and token work; a wrong password never connects and is not logged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use karajo::cluster::nats::claims::{Claim, Claims, new_nonce};
use karajo::cluster::nats::connect::{ConnEvent, connect};
use karajo::cluster::nats::layout::Names;
use karajo::cluster::nats::lease::{Lease, LeaseRecord, watch_nodes};
use karajo::cluster::nats::provision::{bind, provision};
use karajo::cluster::nats::state::transition;
use karajo::cluster::{NatsAuth, NodeName};

use super::super::server::NatsServer;
use super::{LEASE_TTL, OP_TIMEOUT, eventually, link, settings};

/// What node `n1` may do (Appendix B, with the events stream's info added).
const N1_PUBLISH: &[&str] = &[
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.KV_karajo_claims",
    "$JS.API.STREAM.INFO.KV_karajo_nodes",
    "$JS.API.STREAM.INFO.KV_karajo_state",
    "$JS.API.STREAM.INFO.KARAJO_RUNS",
    "$JS.API.STREAM.INFO.KARAJO_LOGS",
    "$JS.API.STREAM.INFO.KARAJO_EVENTS",
    "$JS.API.DIRECT.GET.KV_karajo_claims.>",
    "$JS.API.DIRECT.GET.KV_karajo_nodes.>",
    "$JS.API.DIRECT.GET.KV_karajo_state.>",
    "$KV.karajo_claims.>",
    "$KV.karajo_state.>",
    "$KV.karajo_nodes.n1",
    "$JS.API.CONSUMER.CREATE.KV_karajo_nodes",
    "$JS.API.CONSUMER.CREATE.KV_karajo_nodes.>",
    "$JS.API.CONSUMER.CREATE.KV_karajo_state",
    "$JS.API.CONSUMER.CREATE.KV_karajo_state.>",
    "$JS.API.CONSUMER.DELETE.KV_karajo_nodes.*",
    "$JS.API.CONSUMER.DELETE.KV_karajo_state.*",
    "$JS.FC.>",
];

/// A server configuration: an admin nkey, node n1's nkey with the template, and a
/// user with a password.
fn config(dir: &std::path::Path, admin: &str, n1: &str) -> std::path::PathBuf {
    let allow: Vec<String> = N1_PUBLISH.iter().map(|s| format!("{s:?}")).collect();
    let text = format!(
        r#"authorization {{
  users = [
    {{ nkey: "{admin}" }}
    {{ nkey: "{n1}", permissions: {{
        publish: {{ allow: [ {} ] }}
        subscribe: {{ allow: [ "_INBOX_n1.>" ] }}
    }} }}
    {{ user: "karajo", password: "hunter2" }}
  ]
}}
"#,
        allow.join(", ")
    );
    let path = dir.join("auth.conf");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_an_nkey_and_the_permission_template_runs_the_protocols() {
    let dir = tempfile::tempdir().unwrap();
    let admin_key = nkeys::KeyPair::new_user();
    let n1_key = nkeys::KeyPair::new_user();
    let conf = config(dir.path(), &admin_key.public_key(), &n1_key.public_key());
    let Some(server) = NatsServer::start_with_config(Some(&conf)) else {
        return;
    };
    let seed_file = |name: &str, key: &nkeys::KeyPair| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{}\n", key.seed().unwrap())).unwrap();
        path
    };
    let names = Names::new("karajo");

    // The admin provisions (karajo cluster init).
    let mut admin = settings(&server, "admin");
    admin.auth = NatsAuth::NkeySeed(seed_file("admin.seed", &admin_key));
    let admin_link = link(&admin).await;
    let mut as_n1 = admin.clone();
    as_n1.node = NodeName::parse("n1").unwrap();
    provision(admin_link.jetstream(), &names, &as_n1)
        .await
        .unwrap();

    // Node n1 binds and works with its own rights only.
    let mut n1 = settings(&server, "n1");
    n1.auth = NatsAuth::NkeySeed(seed_file("n1.seed", &n1_key));
    n1.provision = false;
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let n1_link = connect(&n1, move |event| {
        if let ConnEvent::ServerError(text) = event {
            seen.lock().unwrap().push(text);
        }
    })
    .await
    .unwrap();
    assert!(n1_link.wait_connected(Duration::from_secs(10)).await);
    let buckets = bind(n1_link.jetstream(), &names, OP_TIMEOUT).await.unwrap();
    let mut table = watch_nodes(buckets.nodes.clone(), LEASE_TTL, OP_TIMEOUT);
    let record = LeaseRecord::new(n1.node.clone(), jiff::Timestamp::now());
    let mut lease = Lease::join(&buckets.nodes, record, LEASE_TTL, OP_TIMEOUT)
        .await
        .unwrap();
    lease.beat(|_| {}).await.unwrap();
    let claims = Claims::new(
        buckets.claims.clone(),
        n1_link.clone(),
        n1.node.clone(),
        OP_TIMEOUT,
    );
    assert_eq!(claims.claim("job.x.60", &new_nonce()).await, Claim::Won);
    let done = transition(&buckets.state, "job.x", OP_TIMEOUT, |n: Option<u64>| {
        Ok::<_, String>((n.unwrap_or(0) + 1, ()))
    })
    .await
    .unwrap();
    assert_eq!(done.record, 1);
    // (The guard `wait_for` returns is dropped at once: it blocks the watcher.)
    let alive = tokio::time::timeout(
        Duration::from_secs(2),
        table.wait_for(|t| t.is_alive(&n1.node)),
    )
    .await
    .is_ok_and(|seen| seen.is_ok());
    assert!(alive, "n1 watches the nodes bucket");

    // Another node's lease is not n1's to write: refused, seen only as a timeout and
    // a server error event.
    let n2 = LeaseRecord::new(NodeName::parse("n2").unwrap(), jiff::Timestamp::now());
    let err = Lease::join(&buckets.nodes, n2, LEASE_TTL, OP_TIMEOUT)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(
        eventually(Duration::from_secs(2), async || errors
            .lock()
            .unwrap()
            .iter()
            .any(
                |e| e.contains("Permissions Violation") && e.contains("karajo_nodes.n2")
            ))
        .await,
        "{:?}",
        errors.lock().unwrap()
    );
    // Creating streams is not n1's either.
    let err = provision(n1_link.jetstream(), &names, &n1)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    lease.leave().await.unwrap();

    // User and password work too.
    let mut user = settings(&server, "n3");
    user.auth = NatsAuth::UserPassword {
        user: "karajo".into(),
        password: "hunter2".into(),
    };
    let user_link = link(&user).await;
    bind(user_link.jetstream(), &names, OP_TIMEOUT)
        .await
        .unwrap();

    // A wrong password never connects; the events say why without the password.
    user.auth = NatsAuth::UserPassword {
        user: "karajo".into(),
        password: "wrong-secret".into(),
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let heard = events.clone();
    let refused = connect(&user, move |event| heard.lock().unwrap().push(event))
        .await
        .unwrap();
    assert!(!refused.wait_connected(Duration::from_secs(1)).await);
    let events = events.lock().unwrap().clone();
    assert!(!events.is_empty(), "the refusal is reported");
    assert!(
        events
            .iter()
            .all(|e| !format!("{e:?}").contains("wrong-secret")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_token_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("token.conf");
    std::fs::write(&conf, "authorization { token: \"t0ken-secret\" }\n").unwrap();
    let Some(server) = NatsServer::start_with_config(Some(&conf)) else {
        return;
    };
    let mut s = settings(&server, "n1");
    s.auth = NatsAuth::Token("t0ken-secret".into());
    let link = link(&s).await;
    let names = Names::new("karajo");
    provision(link.jetstream(), &names, &s).await.unwrap();

    s.auth = NatsAuth::Token("other".into());
    let refused = connect(&s, |_| {}).await.unwrap();
    assert!(!refused.wait_connected(Duration::from_millis(500)).await);
}
