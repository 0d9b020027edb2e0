//! Orders over JetStream (cluster spec 7.5, 10.4): [`dispatch`] publishes a signed
//! [`RunOrder`] to the work-queue stream, [`OrderSource`] pulls this node's orders only
//! up to its free capacity and checks each one before the caller sees it,
//! [`Delivery`] accepts, refuses or postpones one, [`delete_order`] removes an expired
//! or dead order (MaxDeliver leaves it in the stream, spec 13 trap 8), and
//! [`DeadOrders`] follows the server's max-deliveries advisory.
//!
//! What this module does not do: decide anything about a run. Whether the job is known
//! here, whether its definition matches, and the `dispatched → running` transition
//! belong to the caller; this module only moves, checks and acknowledges messages.
//! Every call to the server is bounded by an `op_timeout`, and a write that timed out is
//! reported as "may have happened" ([`OrderError::TimedOut`], spec 9.4).

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::header::{HeaderValue, NATS_MESSAGE_ID};
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::DeleteMessageErrorKind;
use async_nats::jetstream::{self, AckKind, Context, ErrorCode};
use futures_util::StreamExt as _;
use jiff::Timestamp;
use serde::Deserialize;

use crate::clock::SharedClock;
use crate::cluster::nats::layout::{self, Names};
use crate::cluster::{ClusterSettings, OrderRefused, RunOn, RunOrder};

/// The header that carries an order's signature: lower-case hex HMAC-SHA256 of the body.
pub const SIGN_HEADER: &str = "Karajo-Sign";

/// What went wrong with an order operation. Each message names the operation.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The operation got no answer within `op_timeout`. A write (a dispatch, an ack, a
    /// delete) may still have happened: treat it as uncertain, never as undone.
    #[error("{what}: no answer within {after:?}; it may still have happened")]
    TimedOut {
        /// The operation, e.g. `dispatch run 0193… to karajo.run.any`.
        what: String,
        /// The bound that passed.
        after: Duration,
    },
    /// The server or the client refused the operation.
    #[error("{what}: {source}")]
    Nats {
        /// The operation.
        what: String,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },
    /// The order cannot be sent as it is (its target or run id).
    #[error("{what}: {why}")]
    Invalid {
        /// The operation.
        what: String,
        /// Why not.
        why: String,
    },
}

impl OrderError {
    /// Whether the operation may have happened anyway (it timed out).
    pub fn is_uncertain(&self) -> bool {
        matches!(self, Self::TimedOut { .. })
    }
}

/// Runs `fut` bounded by `op_timeout`, naming the operation in any error
/// (`error::bounded`, in this module's error type).
async fn bounded<T, E>(
    what: impl FnOnce() -> String,
    op_timeout: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, OrderError>
where
    E: StdError + Send + Sync + 'static,
{
    super::error::bounded(op_timeout, what, fut)
        .await
        .map_err(OrderError::from)
}

impl From<super::error::NatsError> for OrderError {
    /// `error::bounded` gives a timeout or a failed call; anything else is
    /// carried as a failed call.
    fn from(error: super::error::NatsError) -> Self {
        match error {
            super::error::NatsError::TimedOut { what, after } => Self::TimedOut { what, after },
            super::error::NatsError::Nats { what, source } => Self::Nats { what, source },
            other => Self::Nats {
                what: "NATS".to_string(),
                source: Box::new(other),
            },
        }
    }
}

/// The subject an order for `target` goes to. `all` and `local` have none: the caller
/// expands `all` into one order per live node, and local runs never travel.
pub fn order_subject(names: &Names, target: &RunOn) -> Result<String, String> {
    match target {
        RunOn::Node(node) => Ok(names.node_orders(node)),
        RunOn::Any => Ok(names.any_orders()),
        RunOn::Tag(tag) => Ok(names.tag_orders(tag)),
        RunOn::All => Err("run_on = all is dispatched as one order per live node".into()),
        RunOn::Local => Err("run_on = local is never dispatched".into()),
    }
}

/// Publishes `order` for `target` with `Nats-Msg-Id: <run>` and its `Karajo-Sign`, and
/// returns the stream sequence the server stored it at (spec 7.5 "Dispatch").
///
/// The publish and its acknowledgement are bounded by `op_timeout`. When that passes,
/// the same message (same `Nats-Msg-Id`) is published once more: the server stores it
/// once, and the second acknowledgement carries the first one's sequence. When that
/// times out too the result is [`OrderError::TimedOut`]: the order may be queued.
pub async fn dispatch(
    js: &Context,
    names: &Names,
    order: &RunOrder,
    target: &RunOn,
    secret: &[u8],
    op_timeout: Duration,
) -> Result<u64, OrderError> {
    let subject = order_subject(names, target).map_err(|why| OrderError::Invalid {
        what: format!("dispatch run {}", order.run),
        why,
    })?;
    let what = || format!("dispatch run {} to {subject}", order.run);
    let run = order
        .run
        .parse::<HeaderValue>()
        .map_err(|_| OrderError::Invalid {
            what: what(),
            why: "the run id cannot be a header value".into(),
        })?;
    let (body, sign) = order.signed(secret);
    let mut headers = HeaderMap::new();
    headers.insert(NATS_MESSAGE_ID, run);
    headers.insert(SIGN_HEADER, sign.as_str());
    let message = PublishMessage::build()
        .payload(body.into())
        .headers(headers);

    let publish_once = |message: PublishMessage| {
        let subject = subject.clone();
        async move {
            let ack = js.send_publish(subject, message).await?;
            ack.await
        }
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = tokio::time::timeout(op_timeout, publish_once(message.clone())).await;
        match result {
            Ok(Ok(ack)) => return Ok(ack.sequence),
            Ok(Err(err)) if err.kind() != PublishErrorKind::TimedOut => {
                return Err(OrderError::Nats {
                    what: what(),
                    source: Box::new(err),
                });
            }
            // The client's own ack timeout, or ours: maybe stored. Once more, same id.
            Ok(Err(_)) | Err(_) if attempt < 2 => {
                tracing::debug!(run = %order.run, %subject, "dispatch: no ack in time; publishing again with the same Nats-Msg-Id");
            }
            Ok(Err(_)) | Err(_) => {
                return Err(OrderError::TimedOut {
                    what: what(),
                    after: op_timeout,
                });
            }
        }
    }
}

/// Deletes order `seq` from the order stream: an order whose deadline passed, or one
/// that reached MaxDeliver (which leaves it in the work queue). Returns whether it was
/// there; deleting an order that is already gone is not an error.
pub async fn delete_order(
    js: &Context,
    names: &Names,
    seq: u64,
    op_timeout: Duration,
) -> Result<bool, OrderError> {
    let stream_name = names.runs_stream();
    let what = || format!("delete order {seq} from stream {stream_name}");
    let stream = bounded(what, op_timeout, js.get_stream_no_info(&stream_name)).await?;
    let result = tokio::time::timeout(op_timeout, stream.delete_message(seq)).await;
    match result {
        Ok(Ok(deleted)) => Ok(deleted),
        Ok(Err(err)) => match err.kind() {
            // 2.9 answers 10057 "no message found"; later servers may say 10037.
            DeleteMessageErrorKind::JetStream(js_err)
                if js_err.error_code() == ErrorCode::NO_MESSAGE_FOUND
                    || (js_err.error_code() == ErrorCode::STREAM_MESSAGE_DELETE_FAILED
                        && js_err.to_string().contains("no message found")) =>
            {
                Ok(false)
            }
            DeleteMessageErrorKind::TimedOut => Err(OrderError::TimedOut {
                what: what(),
                after: op_timeout,
            }),
            _ => Err(OrderError::Nats {
                what: what(),
                source: Box::new(err),
            }),
        },
        Err(_) => Err(OrderError::TimedOut {
            what: what(),
            after: op_timeout,
        }),
    }
}

/// Why a delivery was refused before the caller saw it. The delivery was terminated
/// (`AckKind::Term`), so it is not delivered again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The signature is missing or wrong, or the body is not an order.
    #[error("{0}")]
    Refused(#[from] OrderRefused),
    /// The order's deadline has passed.
    #[error("the order's deadline {deadline} has passed")]
    DeadlinePassed {
        /// The order's deadline.
        deadline: Timestamp,
    },
    /// The order is of a format version this node does not read.
    #[error("order format version {0} is not 1")]
    Version(u32),
}

/// A delivery refused by [`OrderSource::pull`]: what the caller reports as an
/// `order_rejected` event.
#[derive(Debug)]
pub struct Rejected {
    /// The consumer it came from.
    pub consumer: String,
    /// Its sequence in the order stream.
    pub stream_seq: u64,
    /// How often it has been delivered, this time included.
    pub delivered: u64,
    /// Its `Nats-Msg-Id` (the run id it claims), when it has one.
    pub msg_id: Option<String>,
    /// The order, when its signature held (a passed deadline).
    pub order: Option<RunOrder>,
    /// Why it was refused.
    pub reason: Rejection,
    /// Why terminating it failed, when it did (it comes back after `AckWait` and is
    /// refused again).
    pub term_error: Option<String>,
}

/// One verified order, delivered and not yet acknowledged. Accept it with
/// [`Delivery::accept`] once the `Accepted` transition succeeded, refuse it with
/// [`Delivery::reject`], or hand it back with [`Delivery::later`]. Doing nothing gets it
/// redelivered after `AckWait`.
#[derive(Debug)]
pub struct Delivery {
    order: RunOrder,
    message: jetstream::Message,
    consumer: String,
    stream_seq: u64,
    delivered: u64,
    op_timeout: Duration,
}

impl Delivery {
    /// The verified order.
    pub fn order(&self) -> &RunOrder {
        &self.order
    }

    /// The consumer it came from (`run-node-<node>`, `run-any`, `run-tag-<t>`).
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Its sequence in the order stream.
    pub fn stream_seq(&self) -> u64 {
        self.stream_seq
    }

    /// How often it has been delivered, this time included (1 the first time).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Acknowledges it and waits for the server to confirm (`double_ack`): the order
    /// leaves the work queue. A timeout means it may have been acknowledged.
    pub async fn accept(&self) -> Result<(), OrderError> {
        self.ack(AckKind::Ack, "accept").await
    }

    /// Terminates it (`Term`): never delivered again, and gone from the work queue.
    pub async fn reject(&self) -> Result<(), OrderError> {
        self.ack(AckKind::Term, "reject").await
    }

    /// Hands it back to be delivered again after `delay` (`Nak`). Counts as a delivery
    /// towards MaxDeliver.
    pub async fn later(&self, delay: Duration) -> Result<(), OrderError> {
        self.ack(AckKind::Nak(Some(delay)), "postpone").await
    }

    /// Tells the server it is still being worked on (`Progress`), restarting `AckWait`.
    pub async fn in_progress(&self) -> Result<(), OrderError> {
        self.ack(AckKind::Progress, "extend").await
    }

    async fn ack(&self, kind: AckKind, verb: &str) -> Result<(), OrderError> {
        let what = || {
            format!(
                "{verb} order {} (run {}) from {}",
                self.stream_seq, self.order.run, self.consumer
            )
        };
        match tokio::time::timeout(self.op_timeout, self.message.double_ack_with(kind)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(OrderError::Nats {
                what: what(),
                source,
            }),
            Err(_) => Err(OrderError::TimedOut {
                what: what(),
                after: self.op_timeout,
            }),
        }
    }
}

/// What one [`OrderSource::pull`] got: verified orders, and deliveries it refused and
/// terminated. Together at most `free` messages.
#[derive(Debug, Default)]
pub struct Pulled {
    /// Verified orders, for the caller to accept or refuse.
    pub orders: Vec<Delivery>,
    /// Refused deliveries, already terminated.
    pub rejected: Vec<Rejected>,
}

impl Pulled {
    /// How many messages the pull took.
    pub fn len(&self) -> usize {
        self.orders.len() + self.rejected.len()
    }

    /// Whether the pull took nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The longest single wait of a long poll on one consumer while others wait their turn.
pub const DEFAULT_POLL_SLICE: Duration = Duration::from_millis(500);

/// This node's order consumers, pulled only while it has free capacity (spec 7.5
/// "Taking orders"): never an unbounded `messages()` stream, which would hold orders a
/// busy node cannot start until they hit `AckWait` again and again.
pub struct OrderSource {
    consumers: Vec<(String, PullConsumer)>,
    secret: Vec<u8>,
    clock: SharedClock,
    op_timeout: Duration,
    poll_slice: Duration,
    /// Which consumer is asked first next time, so that none starves the others.
    next: usize,
}

impl std::fmt::Debug for OrderSource {
    /// Names the consumers; never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderSource")
            .field("consumers", &self.consumer_names().collect::<Vec<_>>())
            .field("op_timeout", &self.op_timeout)
            .field("poll_slice", &self.poll_slice)
            .finish_non_exhaustive()
    }
}

impl OrderSource {
    /// Binds this node's consumers on the order stream: `run-node-<node>`, `run-any` and
    /// `run-tag-<t>` for each tag in `settings` (they must exist: provisioning or
    /// `karajo cluster init` makes them). `secret` checks the signatures; `clock` the
    /// deadlines.
    pub async fn open(
        js: &Context,
        names: &Names,
        settings: &ClusterSettings,
        secret: &[u8],
        clock: SharedClock,
        op_timeout: Duration,
    ) -> Result<Self, OrderError> {
        let stream = names.runs_stream();
        let mut consumers = Vec::new();
        for config in layout::node_consumers(names, settings) {
            let name = config.durable_name.unwrap_or_default();
            let consumer: PullConsumer = bounded(
                || format!("bind consumer {name} on stream {stream}"),
                op_timeout,
                js.get_consumer_from_stream(&name, &stream),
            )
            .await?;
            consumers.push((name, consumer));
        }
        Ok(Self {
            consumers,
            secret: secret.to_vec(),
            clock,
            op_timeout,
            poll_slice: DEFAULT_POLL_SLICE,
            next: 0,
        })
    }

    /// Sets the longest wait on one consumer during a long poll (see [`Self::pull`]).
    pub fn with_poll_slice(mut self, slice: Duration) -> Self {
        self.poll_slice = slice.max(Duration::from_millis(10));
        self
    }

    /// The consumers pulled, in their first order.
    pub fn consumer_names(&self) -> impl Iterator<Item = &str> {
        self.consumers.iter().map(|(name, _)| name.as_str())
    }

    /// Takes at most `free` messages from this node's consumers, waiting up to `wait`
    /// for the first one.
    ///
    /// First every consumer is asked for what it holds now (`fetch().max_messages(n)`,
    /// answered at once), in turn, each for what is still free. When that finds
    /// nothing and `wait` is not zero, the consumers are long-polled in turn
    /// (`fetch().max_messages(free).expires(slice)`, slice at most the poll slice) until
    /// one delivers or `wait` has passed: a pull request left on the server would take
    /// a message nobody waits for, so only one is ever open. Each message is checked
    /// (signature in constant time, format, deadline); a refused one is terminated and
    /// listed in [`Pulled::rejected`].
    pub async fn pull(&mut self, free: usize, wait: Duration) -> Result<Pulled, OrderError> {
        let mut pulled = Pulled::default();
        if free == 0 || self.consumers.is_empty() {
            return Ok(pulled);
        }
        let count = self.consumers.len();
        // A random first consumer and slice: nodes whose pulls would otherwise keep in
        // step with a timer (a slot every second, slices of half a second) take turns
        // at the shared queues instead of one of them taking every order.
        let start = (self.next + rand::random_range(0..count)) % count;
        self.next = (start + 1) % count;
        for i in 0..count {
            let index = (start + i) % count;
            let room = free - pulled.len();
            if room == 0 {
                break;
            }
            self.fetch(index, room, None, &mut pulled).await?;
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut turn = 0;
        while pulled.is_empty() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let slice = left
                .min(self.poll_slice.mul_f64(rand::random_range(0.5..1.5)))
                .max(Duration::from_millis(10));
            let index = (start + turn) % count;
            turn += 1;
            self.fetch(index, free, Some(slice), &mut pulled).await?;
        }
        Ok(pulled)
    }

    /// One fetch of at most `max` messages from consumer `index`, checked into `pulled`.
    async fn fetch(
        &self,
        index: usize,
        max: usize,
        expires: Option<Duration>,
        pulled: &mut Pulled,
    ) -> Result<(), OrderError> {
        let (name, consumer) = &self.consumers[index];
        let what = || format!("pull orders from consumer {name}");
        let mut request = consumer.fetch().max_messages(max);
        if let Some(expires) = expires {
            request = request.expires(expires);
        }
        let mut batch = bounded(what, self.op_timeout, request.messages()).await?;
        // The server ends the batch itself (a status once nothing more is there, or at
        // `expires`); the bound only guards against a lost end.
        let until = tokio::time::Instant::now() + expires.unwrap_or_default() + self.op_timeout;
        let mut taken = 0;
        while taken < max {
            let next = tokio::time::timeout_at(until, batch.next()).await;
            let message = match next {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(err))) => {
                    if taken > 0 {
                        tracing::debug!(consumer = %name, %err, "pull ended with an error after {taken} orders");
                        break;
                    }
                    return Err(OrderError::Nats {
                        what: what(),
                        source: err,
                    });
                }
                Ok(None) => break,
                Err(_) if taken > 0 => break,
                Err(_) => {
                    return Err(OrderError::TimedOut {
                        what: what(),
                        after: self.op_timeout,
                    });
                }
            };
            taken += 1;
            self.check(name, message, pulled).await;
        }
        Ok(())
    }

    /// Checks one delivered message: a verified order joins `pulled.orders`; anything
    /// else is terminated and joins `pulled.rejected`.
    async fn check(&self, consumer: &str, message: jetstream::Message, pulled: &mut Pulled) {
        let (stream_seq, delivered) = message
            .info()
            .map(|info| {
                (
                    info.stream_sequence,
                    u64::try_from(info.delivered).unwrap_or(0),
                )
            })
            .unwrap_or((0, 0));
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_string())
        };
        let msg_id = header("Nats-Msg-Id");
        let sign = header(SIGN_HEADER).unwrap_or_default();
        let verdict = match RunOrder::verify(&message.payload, &sign, &self.secret) {
            Err(refused) => Err((Rejection::Refused(refused), None)),
            Ok(order) if order.v != 1 => Err((Rejection::Version(order.v), Some(order))),
            Ok(order) if order.deadline < self.clock.now() => Err((
                Rejection::DeadlinePassed {
                    deadline: order.deadline,
                },
                Some(order),
            )),
            Ok(order) => Ok(order),
        };
        match verdict {
            Ok(order) => pulled.orders.push(Delivery {
                order,
                message,
                consumer: consumer.to_string(),
                stream_seq,
                delivered,
                op_timeout: self.op_timeout,
            }),
            Err((reason, order)) => {
                let term =
                    tokio::time::timeout(self.op_timeout, message.double_ack_with(AckKind::Term))
                        .await;
                let term_error = match term {
                    Ok(Ok(())) => None,
                    Ok(Err(err)) => Some(err.to_string()),
                    Err(_) => Some(format!("no answer within {:?}", self.op_timeout)),
                };
                tracing::warn!(%consumer, stream_seq, %reason, "order refused");
                pulled.rejected.push(Rejected {
                    consumer: consumer.to_string(),
                    stream_seq,
                    delivered,
                    msg_id,
                    order,
                    reason,
                    term_error,
                });
            }
        }
    }
}

/// One max-deliveries advisory: an order that was delivered `deliveries` times without
/// an ack and stays in the stream until someone deletes it ([`delete_order`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeadOrder {
    /// The consumer that gave up on it.
    pub consumer: String,
    /// Its sequence in the order stream.
    pub stream_seq: u64,
    /// How often it was delivered.
    pub deliveries: u64,
}

/// A subscription to `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<RUNS stream>.*`: the
/// fast path for dead orders (spec 7.5). Without it, the `dispatch_timeout` sweep finds
/// them later.
#[derive(Debug)]
pub struct DeadOrders {
    subscriber: async_nats::Subscriber,
}

impl DeadOrders {
    /// The advisory subject for the order stream of `names`.
    pub fn subject(names: &Names) -> String {
        format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.*",
            names.runs_stream()
        )
    }

    /// Subscribes, and waits until the server has the subscription (a flush), so that
    /// no advisory after this returns is missed.
    pub async fn subscribe(
        client: &async_nats::Client,
        names: &Names,
        op_timeout: Duration,
    ) -> Result<Self, OrderError> {
        let subject = Self::subject(names);
        let what = || format!("subscribe to {subject}");
        let subscriber = bounded(what, op_timeout, client.subscribe(subject.clone())).await?;
        bounded(what, op_timeout, client.flush()).await?;
        Ok(Self { subscriber })
    }

    /// The next dead order; `None` when the subscription ended. Advisories that do not
    /// parse are skipped.
    pub async fn next(&mut self) -> Option<DeadOrder> {
        while let Some(message) = self.subscriber.next().await {
            match serde_json::from_slice::<DeadOrder>(&message.payload) {
                Ok(dead) => return Some(dead),
                Err(err) => tracing::debug!(%err, "max-deliveries advisory not understood"),
            }
        }
        None
    }
}
