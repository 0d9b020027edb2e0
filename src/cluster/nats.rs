//! The NATS JetStream backend of cluster mode (cluster spec 5 and 7), compiled with the
//! cargo feature `cluster-nats`: the names and settings of the buckets, streams and
//! consumers ([`layout`]), the [`Coordinator`](crate::cluster::coordinator::Coordinator)
//! of one node ([`coordinator`]), and the protocols it is built on: the connection and its
//! health ([`connect`]), provisioning and binding ([`provision`]), node leases
//! ([`lease`]), one-winner claims ([`claims`]), revision-checked records ([`state`]),
//! orders between nodes ([`orders`]), run logs shipped to and collected from the log
//! stream ([`logship`], [`logcollect`], and for the cluster agent [`replica`]), the cluster event stream ([`events`]), the
//! permissions a node needs ([`permissions`]), and their errors ([`error`]).

pub mod claims;
pub mod connect;
pub mod coordinator;
pub mod error;
pub mod events;
pub mod layout;
pub mod lease;
pub mod logcollect;
pub mod logship;
pub mod orders;
pub mod permissions;
pub mod provision;
pub mod replica;
pub mod state;
