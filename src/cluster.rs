//! Cluster mode (the cluster spec): several karajo nodes share one job set through NATS
//! JetStream, every timer slot fires once in the cluster, and runs travel between nodes
//! as signed orders. This room owns the names the nodes share ([`NodeName`], [`RunOn`],
//! [`Slot`], [`RunOrder`]), the `[cluster]` settings ([`ClusterSettings`]), the pure
//! per-job state machine every coordinator applies ([`decide`]), and the NATS backend
//! ([`nats`], cargo feature `cluster-nats`). Without `[cluster] enabled = true` nothing
//! here opens a socket.

pub mod agent;
pub mod contract;
pub mod coordinator;
pub mod decide;
pub mod local;
pub mod memory;
#[cfg(feature = "cluster-nats")]
pub mod nats;
pub mod pending;
pub mod status;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::job::{JobKey, JobKind};

/// Whether this binary was built with the NATS backend (cargo feature `cluster-nats`).
pub const BUILT_WITH_NATS: bool = cfg!(feature = "cluster-nats");

/// What karajo says, and exits 1 with, when `[cluster] enabled = true` meets a binary
/// built without the NATS backend (cluster spec 3.2).
pub const NOT_BUILT_MESSAGE: &str =
    "cluster: this karajo was built without cluster support (cargo feature cluster-nats)";

/// Names a node may not take: they are `run_on` words or subject branches.
const RESERVED_NODE_NAMES: [&str; 4] = ["any", "all", "local", "tag"];

/// A node's name: `[a-z0-9][a-z0-9_-]{0,63}`, not `any`, `all`, `local` or `tag`. It is
/// a NATS subject token and a KV key as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeName(String);

impl NodeName {
    /// `name` when it is a valid node name; otherwise why not.
    pub fn parse(name: &str) -> Result<Self, String> {
        let valid_first = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let valid_rest = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid_first || !valid_rest || name.len() > 64 {
            return Err(format!(
                "node name {name:?} is not valid: use 1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit"
            ));
        }
        if RESERVED_NODE_NAMES.contains(&name) {
            return Err(format!(
                "node name {name:?} is reserved (any, all, local and tag are run_on words)"
            ));
        }
        Ok(Self(name.to_string()))
    }

    /// A node name made from a host name the way job ids are made from job names
    /// (lower case, other characters to `_`), or `None` when that is still not valid.
    pub fn from_host(host: &str) -> Option<Self> {
        let normalised: String = host
            .trim()
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Self::parse(&normalised).ok()
    }

    /// `karajo`: the name of a node whose host name makes no valid one (while cluster
    /// mode is off; on, such a node must set `node`).
    pub fn fallback() -> Self {
        Self("karajo".to_string())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for NodeName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        Self::parse(&name)
    }
}

impl From<NodeName> for String {
    fn from(name: NodeName) -> String {
        name.0
    }
}

/// Checks a tag: `[a-z0-9_-]{1,64}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let valid = !tag.is_empty()
        && tag.len() <= 64
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} is not valid: use 1 to 64 of a-z, 0-9, _ and -"
        ))
    }
}

/// Where a job's runs execute (a job's `run_on`, cluster spec 4.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RunOn {
    /// Not coordinated: every node runs its own copy on its own timer.
    Local,
    /// Fires once in the cluster; one free live node runs it (the default).
    #[default]
    Any,
    /// Fires once; one run on every live node.
    All,
    /// Fires once; that node runs it.
    Node(NodeName),
    /// Fires once; one free live node with that tag runs it.
    Tag(String),
}

impl RunOn {
    /// Reads a `run_on` value: `local`, `any`, `all`, `tag:<t>` or a node name.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        match value {
            "local" => Ok(Self::Local),
            "any" | "" => Ok(Self::Any),
            "all" => Ok(Self::All),
            _ => match value.strip_prefix("tag:") {
                Some(tag) => check_tag(tag).map(|()| Self::Tag(tag.to_string())),
                None => NodeName::parse(value).map(Self::Node).map_err(|why| {
                    format!(
                        "run_on = {value:?}: not local, any, all, tag:<t> or a node name ({why})"
                    )
                }),
            },
        }
    }

    /// Whether runs of this job are coordinated through the cluster.
    pub fn is_cluster(&self) -> bool {
        *self != Self::Local
    }
}

impl fmt::Display for RunOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local => f.write_str("local"),
            Self::Any => f.write_str("any"),
            Self::All => f.write_str("all"),
            Self::Node(node) => f.write_str(node.as_str()),
            Self::Tag(tag) => write!(f, "tag:{tag}"),
        }
    }
}

impl TryFrom<String> for RunOn {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<RunOn> for String {
    fn from(run_on: RunOn) -> String {
        run_on.to_string()
    }
}

/// The word of a job kind in cluster keys and subjects: `job` or `job_http`.
pub fn kind_word(kind: JobKind) -> &'static str {
    kind.as_str()
}

/// The KV key of a job's shared state record: `<kind>.<id>` (cluster spec 5.1).
pub fn state_key(job: &JobKey) -> String {
    format!("{}.{}", kind_word(job.kind), job.id)
}

/// The job a state key names, if it is a command or HTTP job with a plain id.
pub fn parse_state_key(key: &str) -> Option<JobKey> {
    let (kind, id) = key.split_once('.')?;
    let kind = JobKind::parse(kind).filter(|k| matches!(k, JobKind::Exec | JobKind::Http))?;
    crate::store::is_plain_id(id).then(|| JobKey {
        kind,
        id: crate::job::JobId::from_raw(id),
    })
}

/// One due time of a job's timer, in whole UTC seconds (`0` for an interval job that has
/// never run).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slot {
    /// The job.
    pub job: JobKey,
    /// The due time, seconds since the Unix epoch.
    pub at: i64,
}

impl Slot {
    /// The claims-bucket key: `<kind>.<id>.<slot-unix-seconds>`.
    pub fn claim_key(&self) -> String {
        format!("{}.{}", state_key(&self.job), self.at)
    }
}

/// What a run was started by, as an order carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderTrigger {
    /// A timer slot.
    Timer,
    /// A timer slot fired late, after an outage (`misfire_grace`).
    CatchUp,
    /// A signed web hook.
    Webhook,
    /// The API or the web UI.
    Api,
}

/// An order: the message that asks one node to start one run of a job it defines itself
/// (cluster spec 7.5). It names the job; the command always comes from the executing
/// node's own configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOrder {
    /// The format version, 1.
    pub v: u32,
    /// The run's id (UUID v7): also the order's `Nats-Msg-Id`.
    pub run: String,
    /// `job` or `job_http`.
    pub kind: String,
    /// The job's id.
    pub job: String,
    /// The run's counter.
    pub counter: u64,
    /// What started it.
    pub trigger: OrderTrigger,
    /// The timer slot, for timer runs.
    pub slot: Option<i64>,
    /// The node that dispatched it.
    pub origin: NodeName,
    /// When it was dispatched.
    pub enqueued_at: Timestamp,
    /// When it is no longer accepted (`dispatch_timeout` after `enqueued_at`).
    pub deadline: Timestamp,
    /// `sha256:<hex>` of the job's definition on the dispatching node.
    pub job_digest: String,
}

impl RunOrder {
    /// The order's body and its `Karajo-Sign` header value: lower-case hex
    /// HMAC-SHA256 over the exact body with the shared `[karajo] secret`.
    pub fn signed(&self, secret: &[u8]) -> (Vec<u8>, String) {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let sign = crate::auth::signature::sign_hmac_sha256(secret, &body);
        (body, sign)
    }

    /// The order in `body` when `sign` is its signature with `secret` (compared in
    /// constant time) and it parses; otherwise why not.
    pub fn verify(body: &[u8], sign: &str, secret: &[u8]) -> Result<Self, OrderRefused> {
        let expected = crate::auth::signature::sign_hmac_sha256(secret, body);
        let same: bool =
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), sign.trim().as_bytes()).into();
        if !same {
            return Err(OrderRefused::BadSignature);
        }
        serde_json::from_slice(body).map_err(|e| OrderRefused::Malformed(e.to_string()))
    }
}

/// Why an order was refused before its transition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderRefused {
    /// `Karajo-Sign` is missing or wrong.
    #[error("bad or missing Karajo-Sign")]
    BadSignature,
    /// The body is not an order.
    #[error("not an order: {0}")]
    Malformed(String),
}

/// The `[cluster]` section (cluster spec 4.1), typed and checked. Present in every
/// configuration; `enabled` is false unless the section says otherwise.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// Cluster mode is on.
    pub enabled: bool,
    /// This node's name.
    pub node: NodeName,
    /// This node's tags.
    pub tags: Vec<String>,
    /// The NATS seed URLs.
    pub nats_urls: Vec<String>,
    /// How this node authenticates to NATS.
    pub auth: NatsAuth,
    /// A PEM CA file for TLS.
    pub tls_ca: Option<PathBuf>,
    /// A client certificate and key for mTLS.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// TLS before the server's INFO line.
    pub tls_first: bool,
    /// The namespace of every subject, bucket and stream.
    pub prefix: String,
    /// Create missing buckets, streams and consumers at start-up.
    pub provision: bool,
    /// Replicas of every stream and bucket.
    pub replicas: usize,
    /// The nodes bucket's `max_age`; heartbeats every third of it.
    pub lease_ttl: Duration,
    /// The bound on any single NATS operation.
    pub op_timeout: Duration,
    /// The client's ping interval.
    pub ping_interval: Duration,
    /// The order consumers' `AckWait`.
    pub dispatch_ack_wait: Duration,
    /// The order consumers' `MaxDeliver`.
    pub dispatch_max_deliver: i64,
    /// How long an order may wait to be accepted.
    pub dispatch_timeout: Duration,
    /// How old a missed slot may be and still fire once after an outage (0: never).
    pub misfire_grace: Duration,
    /// The claims bucket's `max_age`.
    pub claim_retention: Duration,
    /// The log stream's `max_age`.
    pub log_max_age: Duration,
    /// The log stream's `max_bytes`.
    pub log_max_bytes: i64,
}

/// How a node authenticates to NATS: at most one kind (cluster spec 4.1).
#[derive(Clone, PartialEq, Eq, Default)]
pub enum NatsAuth {
    /// No credentials.
    #[default]
    None,
    /// A `.creds` file (JWT plus nkey seed).
    Creds(PathBuf),
    /// A file holding an nkey user seed (`SU…`).
    NkeySeed(PathBuf),
    /// User and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// A token.
    Token(String),
}

impl fmt::Debug for NatsAuth {
    /// Names the kind and the files; never a password or token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Creds(path) => write!(f, "Creds({})", path.display()),
            Self::NkeySeed(path) => write!(f, "NkeySeed({})", path.display()),
            Self::UserPassword { user, .. } => write!(f, "UserPassword({user}, <redacted>)"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

impl fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("enabled", &self.enabled)
            .field("node", &self.node)
            .field("tags", &self.tags)
            .field("nats_urls", &self.nats_urls)
            .field("auth", &self.auth)
            .field("prefix", &self.prefix)
            .field("lease_ttl", &self.lease_ttl)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

/// `[cluster] lease_ttl` default.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);
/// `[cluster] op_timeout` default.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(2);
/// `[cluster] ping_interval` default.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(5);
/// `[cluster] dispatch_ack_wait` default.
pub const DEFAULT_DISPATCH_ACK_WAIT: Duration = Duration::from_secs(30);
/// `[cluster] dispatch_max_deliver` default.
pub const DEFAULT_DISPATCH_MAX_DELIVER: i64 = 5;
/// `[cluster] dispatch_timeout` default.
pub const DEFAULT_DISPATCH_TIMEOUT: Duration = Duration::from_secs(600);
/// `[cluster] misfire_grace` default.
pub const DEFAULT_MISFIRE_GRACE: Duration = Duration::from_secs(60);
/// `[cluster] claim_retention` default.
pub const DEFAULT_CLAIM_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// `[cluster] log_max_age` default.
pub const DEFAULT_LOG_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// `[cluster] log_max_bytes` default: 1 GiB.
pub const DEFAULT_LOG_MAX_BYTES: i64 = 1 << 30;
/// `[cluster] nats_url` default.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// `[cluster] prefix` default.
pub const DEFAULT_PREFIX: &str = "karajo";

impl ClusterSettings {
    /// The settings of a node `node` with every default (cluster mode off).
    pub fn defaults(node: NodeName) -> Self {
        Self {
            enabled: false,
            node,
            tags: Vec::new(),
            nats_urls: vec![DEFAULT_NATS_URL.to_string()],
            auth: NatsAuth::None,
            tls_ca: None,
            tls_client: None,
            tls_first: false,
            prefix: DEFAULT_PREFIX.to_string(),
            provision: true,
            replicas: 1,
            lease_ttl: DEFAULT_LEASE_TTL,
            op_timeout: DEFAULT_OP_TIMEOUT,
            ping_interval: DEFAULT_PING_INTERVAL,
            dispatch_ack_wait: DEFAULT_DISPATCH_ACK_WAIT,
            dispatch_max_deliver: DEFAULT_DISPATCH_MAX_DELIVER,
            dispatch_timeout: DEFAULT_DISPATCH_TIMEOUT,
            misfire_grace: DEFAULT_MISFIRE_GRACE,
            claim_retention: DEFAULT_CLAIM_RETENTION,
            log_max_age: DEFAULT_LOG_MAX_AGE,
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobId;

    #[test]
    fn node_names_are_subject_tokens_and_not_run_on_words() {
        assert!(NodeName::parse("web-2").is_ok());
        assert!(NodeName::parse("n_1").is_ok());
        for bad in [
            "",
            "Web",
            "-x",
            "a.b",
            "a b",
            "any",
            "all",
            "local",
            "tag",
            &"x".repeat(65),
        ] {
            assert!(NodeName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            NodeName::from_host("Build.Example.COM").unwrap().as_str(),
            "build_example_com"
        );
        assert_eq!(NodeName::from_host("  "), None);
    }

    #[test]
    fn run_on_reads_every_form_and_names_a_bad_one() {
        assert_eq!(RunOn::parse("local"), Ok(RunOn::Local));
        assert_eq!(RunOn::parse(""), Ok(RunOn::Any));
        assert_eq!(RunOn::parse("all"), Ok(RunOn::All));
        assert_eq!(RunOn::parse("tag:gpu"), Ok(RunOn::Tag("gpu".into())));
        assert_eq!(
            RunOn::parse("n2"),
            Ok(RunOn::Node(NodeName::parse("n2").unwrap()))
        );
        assert!(RunOn::parse("tag:").is_err());
        let bad = RunOn::parse("Web 2").unwrap_err();
        assert!(bad.contains("run_on = \"Web 2\""), "{bad}");
        for value in ["local", "any", "all", "tag:gpu", "n2"] {
            assert_eq!(RunOn::parse(value).unwrap().to_string(), value);
        }
    }

    #[test]
    fn slots_and_records_have_the_spec_keys() {
        let job = JobKey::exec(JobId::from_raw("nightly_backup"));
        assert_eq!(state_key(&job), "job.nightly_backup");
        let slot = Slot {
            job: JobKey::http(JobId::from_raw("ping")),
            at: 1_795_413_600,
        };
        assert_eq!(slot.claim_key(), "job_http.ping.1795413600");
    }

    #[test]
    fn an_order_is_accepted_only_with_its_signature() {
        let order = RunOrder {
            v: 1,
            run: "0193f0c2-0000-7000-8000-000000000000".into(),
            kind: "job".into(),
            job: "render".into(),
            counter: 43,
            trigger: OrderTrigger::Webhook,
            slot: None,
            origin: NodeName::parse("web-1").unwrap(),
            enqueued_at: Timestamp::UNIX_EPOCH,
            deadline: Timestamp::UNIX_EPOCH,
            job_digest: "sha256:00".into(),
        };
        let (body, sign) = order.signed(b"s3cret");
        assert_eq!(RunOrder::verify(&body, &sign, b"s3cret"), Ok(order));
        assert_eq!(
            RunOrder::verify(&body, &sign, b"other"),
            Err(OrderRefused::BadSignature)
        );
        let mut forged = body.clone();
        forged[10] ^= 1;
        assert_eq!(
            RunOrder::verify(&forged, &sign, b"s3cret"),
            Err(OrderRefused::BadSignature)
        );
    }

    #[test]
    fn credentials_never_show_in_debug() {
        let mut settings = ClusterSettings::defaults(NodeName::parse("n1").unwrap());
        settings.auth = NatsAuth::UserPassword {
            user: "karajo".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
        settings.auth = NatsAuth::Token("t0ken".into());
        assert!(!format!("{settings:?}").contains("t0ken"));
    }
}
