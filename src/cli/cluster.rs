//! `karajo cluster ...`: cluster mode's operator commands. `permissions --node N` prints
//! the `nats-server.conf` user entry that node N needs and no more (cluster spec 10.2);
//! the NATS work itself is in [`crate::cluster::nats`].

use std::io::Write;

use clap::Subcommand;

use super::CliError;
use crate::cluster::NodeName;
use crate::cluster::nats::layout::Names;
use crate::cluster::nats::permissions::user_entry;

/// `karajo cluster ...`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Print the NATS permissions of one node, as a nats-server.conf user entry.
    Permissions {
        /// The node's name (`[cluster] node`).
        #[arg(long)]
        node: String,
        /// A tag of the node (`[cluster] tag`); repeat for more.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// `[cluster] prefix`.
        #[arg(long, default_value = crate::cluster::DEFAULT_PREFIX)]
        prefix: String,
        /// The node's public nkey (`U…`); a placeholder when absent.
        #[arg(long)]
        nkey: Option<String>,
    },
}

/// Runs a `karajo cluster` subcommand.
pub fn run_cluster(command: &ClusterCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        ClusterCommand::Permissions {
            node,
            tags,
            prefix,
            nkey,
        } => {
            let node = NodeName::parse(node).map_err(CliError::Usage)?;
            for tag in tags {
                crate::cluster::check_tag(tag).map_err(CliError::Usage)?;
            }
            let entry = user_entry(&Names::new(prefix), &node, tags, nkey.as_deref());
            out.write_all(entry.as_bytes()).map_err(CliError::output)
        }
    }
}
