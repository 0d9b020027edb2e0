//! The NATS JetStream backend of cluster mode (cluster spec 5 and 7), compiled with the
//! cargo feature `cluster-nats`: the names and settings of the buckets, streams and
//! consumers ([`layout`]), orders between nodes ([`orders`]), run logs shipped to and
//! collected from the log stream ([`logship`], [`logcollect`]), and the permissions a
//! node needs ([`permissions`]).

pub mod layout;
pub mod logcollect;
pub mod logship;
pub mod orders;
pub mod permissions;
