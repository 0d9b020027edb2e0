//! The NATS JetStream backend of cluster mode (cluster spec 5 and 7), compiled with the
//! cargo feature `cluster-nats`: the names and settings of the buckets, streams and
//! consumers ([`layout`]), and the protocols built on them.

pub mod layout;
pub mod logcollect;
pub mod logship;
pub mod orders;
