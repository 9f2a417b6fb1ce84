//! Rejoining a member whose data directory was wiped, or joining a member added to a running
//! cluster (the same steps: its removal is then a no-op). Its log and votes are gone, so it must
//! not simply answer raft messages again: a leader would see its log go backwards (openraft
//! panics), and its empty vote could help elect a stale node. Instead, group by group (the
//! metadata group first, then each partition it holds), the group's leader removes it, then
//! adds it back as a learner, which receives the whole log (logs are never compacted) and so
//! rebuilds its shards, and promotes it to voter once it has caught up. Until its group's turn,
//! the node refuses that group's raft messages.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft, RaftTypeConfig};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::cluster::network::META_GROUP;
use crate::cluster::rpc::{Forwarded, forward};
use crate::cluster::types::{NodeId, WriteOutcome};
use crate::error::{Error, Result};
use crate::node::Node;

/// Present in the data directory while a rejoin is under way, so a restart resumes it
/// instead of starting as a member in good standing with half its groups.
pub const REJOIN_MARKER: &str = "REJOINING";

/// How long one membership step may take on the leader (catching up a learner included).
const STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// Which groups of a rejoining node may exchange raft messages yet.
#[derive(Default)]
pub struct RejoinGate {
    /// `None`: not rejoining, every group is open.
    open: Mutex<Option<HashSet<String>>>,
}

impl RejoinGate {
    pub fn closed() -> Self {
        Self {
            open: Mutex::new(Some(HashSet::new())),
        }
    }

    /// Whether raft messages for `group` are served.
    pub fn admits(&self, group: &str) -> bool {
        self.open.lock().as_ref().is_none_or(|g| g.contains(group))
    }

    pub fn is_rejoining(&self) -> bool {
        self.open.lock().is_some()
    }

    fn open_group(&self, group: &str) {
        if let Some(g) = self.open.lock().as_mut() {
            g.insert(group.to_string());
        }
    }

    fn finish(&self) {
        *self.open.lock() = None;
    }
}

/// A membership step run on a group's leader for a rejoining member.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MembershipStep {
    pub group: String,
    pub member: NodeId,
    pub action: StepAction,
    /// The member's raft address, for a leader whose config does not list it yet.
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    /// Drop the member from the group (it is then neither voter nor learner).
    Remove,
    /// Add it as a learner, wait until it holds the leader's log, make it a voter again.
    Readd,
}

/// Runs `step` on `raft` if this node leads it.
pub async fn run_step<C>(
    raft: &Raft<C>,
    step: &MembershipStep,
    address: &str,
) -> Result<WriteOutcome<()>>
where
    C: RaftTypeConfig<
            NodeId = NodeId,
            Node = BasicNode,
            Responder = openraft::impls::OneshotResponder<C>,
        >,
{
    let metrics = raft.metrics().borrow().clone();
    let me = metrics.id;
    if metrics.current_leader != Some(me) {
        return Ok(WriteOutcome::NotLeader(metrics.current_leader));
    }
    let voters: BTreeSet<NodeId> = metrics.membership_config.membership().voter_ids().collect();
    let changed = match step.action {
        StepAction::Remove => {
            if !voters.contains(&step.member) {
                return Ok(WriteOutcome::Applied(()));
            }
            let rest: BTreeSet<NodeId> = voters.into_iter().filter(|&v| v != step.member).collect();
            raft.change_membership(rest, false).await
        }
        StepAction::Readd => {
            if voters.contains(&step.member) {
                return Ok(WriteOutcome::Applied(()));
            }
            let node = BasicNode {
                addr: address.to_string(),
            };
            if let Err(e) = raft.add_learner(step.member, node, false).await {
                return written(Err(e));
            }
            wait_caught_up(raft, step.member).await?;
            let mut all = voters;
            all.insert(step.member);
            raft.change_membership(all, false).await
        }
    };
    written(changed.map(|_| ()))
}

fn written(
    result: std::result::Result<(), RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>>,
) -> Result<WriteOutcome<()>> {
    match result {
        Ok(()) => Ok(WriteOutcome::Applied(())),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Ok(WriteOutcome::NotLeader(f.leader_id))
        }
        Err(e) => Err(Error::Unavailable(format!("membership change failed: {e}"))),
    }
}

/// Waits until the learner `member` has matched the leader's last log entry.
async fn wait_caught_up<C>(raft: &Raft<C>, member: NodeId) -> Result<()>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
{
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let m = raft.metrics().borrow().clone();
        let matched = m
            .replication
            .as_ref()
            .and_then(|r| r.get(&member).cloned().flatten())
            .map(|l| l.index);
        if matched.is_some() && matched >= m.last_log_index {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!(
                "member {member} did not catch up within {STEP_TIMEOUT:?} (matched {matched:?} of {:?})",
                m.last_log_index
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Node {
    /// Runs `step` here if this node leads its group (the raft port's `/internal/membership`).
    pub async fn membership_step(&self, step: &MembershipStep) -> Result<WriteOutcome<()>> {
        let address = self
            .peers
            .address(step.member)
            .map(str::to_string)
            .or_else(|| step.address.clone())
            .ok_or_else(|| Error::bad_request(format!("{} is not a member", step.member)))?;
        if step.group == META_GROUP {
            return run_step(self.meta_raft(), step, &address).await;
        }
        let raft = self.partition_raft(&step.group)?;
        run_step(&raft, step, &address).await
    }

    /// Sends `step` to its group's leader, following hints and trying every member, until it
    /// is done (a majority of the group must be up).
    async fn membership_step_anywhere(&self, step: &MembershipStep) -> Result<()> {
        let me = self.config.node_id;
        // Not the member the step is about: it is rejoining (never the leader) or being
        // removed (maybe dead).
        let members: Vec<NodeId> = self
            .config
            .cluster
            .members
            .iter()
            .map(|m| m.id)
            .filter(|&id| id != step.member)
            .collect();
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut hint: Option<NodeId> = None;
        let mut attempt = 0usize;
        loop {
            let target = hint.unwrap_or(members[attempt % members.len()]);
            let answer = if target == me {
                self.membership_step(step).await.map(Forwarded::Done)
            } else {
                let addr = self.peers.address(target).unwrap_or_default().to_string();
                forward::<_, WriteOutcome<()>>(
                    &self.peers,
                    &addr,
                    "/internal/membership",
                    step,
                    STEP_TIMEOUT,
                )
                .await
            };
            match answer {
                Ok(Forwarded::Done(WriteOutcome::Applied(()))) => return Ok(()),
                Ok(Forwarded::Done(WriteOutcome::NotLeader(Some(l)))) if Some(l) != hint => {
                    hint = Some(l);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::info!(group = %step.group, error = %e, "rejoin step failed; retrying")
                }
            }
            hint = None;
            attempt += 1;
            if Instant::now() > deadline {
                return Err(Error::Unavailable(format!(
                    "rejoin of group {} did not finish within {STEP_TIMEOUT:?}",
                    step.group
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Removes `member` from the metadata group and from every partition group placed on it,
    /// through each group's leader (an admin command: `DELETE /_cluster/members/{id}`). Its
    /// partitions keep their other replicas; returns the groups it was removed from.
    pub async fn remove_member(&self, member: NodeId) -> Result<Vec<String>> {
        if member == self.config.node_id {
            return Err(Error::bad_request(
                "a node cannot remove itself: ask another member",
            ));
        }
        if self.config.cluster.member(member).is_none() {
            return Err(Error::NotFound(format!("node {member} is not a member")));
        }
        let mut groups = vec![META_GROUP.to_string()];
        for topic in self.meta.topics() {
            for (p, replicas) in topic.replicas.iter().enumerate() {
                if replicas.contains(&member) {
                    groups.push(format!("{}/{p}", topic.name));
                }
            }
        }
        for group in &groups {
            let step = MembershipStep {
                group: group.clone(),
                member,
                action: StepAction::Remove,
                address: None,
            };
            self.membership_step_anywhere(&step).await?;
        }
        Ok(groups)
    }

    /// Removes this node from `group`, opens the group to raft messages, and has the leader
    /// add it back once it holds the log.
    async fn rejoin_group(&self, group: &str) -> Result<()> {
        let me = self.config.node_id;
        let step = |action| MembershipStep {
            group: group.to_string(),
            member: me,
            action,
            address: self.peers.address(me).map(str::to_string),
        };
        self.membership_step_anywhere(&step(StepAction::Remove))
            .await?;
        self.rejoin.open_group(group);
        self.membership_step_anywhere(&step(StepAction::Readd))
            .await?;
        tracing::info!(group, "rejoined");
        Ok(())
    }

    /// The whole rejoin, in the background: the metadata group, then (once its state has
    /// arrived and the topics are open here) every partition this node holds.
    pub(crate) fn spawn_rejoin(self: &Arc<Self>) {
        let node = self.clone();
        tokio::spawn(async move {
            eprintln!(
                "sv-appliance: node {} joins a running cluster (new, or its data directory was lost): the group leaders remove it if it was there, then add it and send it the whole log",
                node.config.node_id
            );
            if let Err(e) = node.rejoin_all().await {
                tracing::error!(error = %e, "rejoin failed");
                eprintln!("sv-appliance: rejoin failed: {e}");
            }
        });
    }

    async fn rejoin_all(self: &Arc<Self>) -> Result<()> {
        self.rejoin_group(META_GROUP).await?;
        // The metadata log has arrived: open every topic (their groups wait, uninitialized).
        for meta in self.meta.topics() {
            self.open_topic(&meta).await?;
        }
        let groups: Vec<String> = self
            .topics()
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.group.clone()))
            .collect();
        let rejoins = groups.iter().map(|g| self.rejoin_group(g));
        for result in futures::future::join_all(rejoins).await {
            result?;
        }
        std::fs::remove_file(self.config.data_dir.join(REJOIN_MARKER))?;
        self.rejoin.finish();
        eprintln!(
            "sv-appliance: node {} rejoined every group",
            self.config.node_id
        );
        Ok(())
    }
}
