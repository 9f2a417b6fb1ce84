//! The message templates of the three topics of chronik's "37-query scale test" (app-logs: 30,
//! support-tickets: 25, system-events: 20) and the values their `{slot}`s take.
//!
//! Written for the test's queries: each of its 8 text queries matches lines of app-logs
//! (`error` and `failed` match every topic, for the multi-topic orchestrator queries), and each
//! vector or hybrid query has templates on its topic that say the same thing in other words,
//! so a semantic search finds related lines rather than only exact terms.
//!
//! The text index does not stem (Tantivy's `default` tokenizer: split on non-alphanumerics,
//! lowercase), so the plan's `certificate AND expir` only matches the token `expir`. Monitoring
//! tools print event codes such as `CERT_EXPIR`, which tokenizes to `cert` + `expir`; two
//! templates carry that code, and the query is left as the plan wrote it.

/// One template: its level (or ticket priority), the component that wrote it (empty: the
/// record's service), and the text with `{slot}` placeholders.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    pub level: &'static str,
    pub component: &'static str,
    pub text: &'static str,
}

const fn t(level: &'static str, component: &'static str, text: &'static str) -> Template {
    Template {
        level,
        component,
        text,
    }
}

/// Application logs of a microservice fleet; the component is the service that logged.
pub const APP_LOGS: [Template; 30] = [
    t(
        "INFO",
        "",
        "GET /api/v2/{resource}/{id} 200 in {ms} ms (user {user})",
    ),
    t(
        "INFO",
        "",
        "POST /api/v2/{resource} 201 in {ms} ms, request_id={reqid}",
    ),
    t(
        "WARN",
        "",
        "upstream {svc} request timeout after {ms} ms, retrying ({small}/3)",
    ),
    t(
        "ERROR",
        "",
        "request to {svc} failed: read timeout after {ms} ms on {ip}:8080",
    ),
    t(
        "WARN",
        "",
        "slow query on database {db} took {ms} ms (threshold 500 ms): SELECT * FROM {table} WHERE id = {id}",
    ),
    t(
        "ERROR",
        "",
        "database connection pool exhausted for {db}: {n} of {n} connections in use, caller waited {ms} ms",
    ),
    t(
        "WARN",
        "",
        "database connection to {db} at {ip}:5432 reset by peer, reconnecting",
    ),
    t(
        "INFO",
        "",
        "database migration {ver} applied to {db} in {ms} ms",
    ),
    t(
        "WARN",
        "",
        "connection pool for {db} at {pct}% capacity, query latency degrading",
    ),
    t(
        "WARN",
        "",
        "[CERT_EXPIR] TLS certificate for {svc}.{domain} expires in {days} days, renewal pending",
    ),
    t(
        "ERROR",
        "",
        "SSL handshake with {svc}.{domain} failed: x509 certificate has expired (CERT_EXPIR)",
    ),
    t(
        "ERROR",
        "",
        "kubernetes pod {pod} in namespace {ns} killed by the OOM killer: container exceeded its {mem}Mi memory limit",
    ),
    t(
        "WARN",
        "",
        "heap usage of {svc} at {pct}% after full collection, suspected memory leak (rss {mem} MiB and growing)",
    ),
    t(
        "INFO",
        "",
        "garbage collection pause of {ms} ms in {svc}: heap {mem} MiB before, {mem} MiB after",
    ),
    t(
        "INFO",
        "",
        "kubernetes horizontal pod autoscaler scaled deployment {svc} from {small} to {n} replicas (cpu {pct}%)",
    ),
    t(
        "ERROR",
        "",
        "gRPC call {svc}.{rpc} failed: DEADLINE_EXCEEDED, deadline exceeded after {ms} ms",
    ),
    t(
        "WARN",
        "",
        "gRPC stream to {svc} reset by peer, status UNAVAILABLE, reconnecting in {small} s",
    ),
    t(
        "ERROR",
        "",
        "unhandled error in handler /api/v2/{resource}: NullPointerException at line {n}",
    ),
    t(
        "ERROR",
        "",
        "failed to publish event {event} to kafka topic {ktopic}: broker not available",
    ),
    t(
        "WARN",
        "",
        "network partition detected between zone {zone} and zone {zone}: {small} peers unreachable",
    ),
    t(
        "ERROR",
        "",
        "health check failed for {svc} in zone {zone}: connection refused by {ip}",
    ),
    t(
        "INFO",
        "",
        "cache hit ratio for {svc} is {pct}% over the last 5 minutes",
    ),
    t("INFO", "", "user {user} signed in from {ip} via {auth}"),
    t(
        "WARN",
        "",
        "rate limit reached for API key {key}: {n} requests in 60 s",
    ),
    t(
        "INFO",
        "",
        "feature flag {flag} enabled for {pct}% of requests",
    ),
    t(
        "ERROR",
        "",
        "payment provider returned error {code} for order {order}, will retry",
    ),
    t(
        "INFO",
        "",
        "deployed {svc} version {ver} to namespace {ns}, {small} pods ready",
    ),
    t(
        "WARN",
        "",
        "slow responses from {svc}: p99 latency {ms} ms over the last minute, performance degraded",
    ),
    t(
        "ERROR",
        "",
        "circuit breaker opened for {svc} after {small} consecutive failures",
    ),
    t(
        "INFO",
        "",
        "background job {job} completed in {ms} ms, {n} items processed",
    ),
];

/// Customer support tickets; the level is the ticket's priority, the component its queue.
pub const SUPPORT_TICKETS: [Template; 25] = [
    t(
        "P2",
        "billing",
        "Ticket {ticket}: customer {cust} was charged twice for invoice {invoice} ({amount} USD) and asks for a refund",
    ),
    t(
        "P2",
        "billing",
        "Ticket {ticket}: {cust} reports the credit card payment failed at checkout with error {code}",
    ),
    t(
        "P3",
        "billing",
        "Ticket {ticket}: billing question from {cust}: invoice {invoice} shows the wrong plan ({plan})",
    ),
    t(
        "P2",
        "account",
        "Ticket {ticket}: {cust} cannot log in, the password reset email never arrives",
    ),
    t(
        "P2",
        "account",
        "Ticket {ticket}: {cust} locked out after too many failed login attempts, asks to unlock the account",
    ),
    t(
        "P2",
        "account",
        "Ticket {ticket}: two-factor authentication code rejected for {cust}, authenticator app out of sync",
    ),
    t(
        "P1",
        "sso",
        "Ticket {ticket}: SSO via SAML broken for {cust} since the identity provider rotated its certificate, error {code}",
    ),
    t(
        "P1",
        "sso",
        "Ticket {ticket}: Okta single sign-on redirects users of {cust} in a loop, SAML assertion rejected",
    ),
    t(
        "P2",
        "exports",
        "Ticket {ticket}: CSV data export of {n} rows stuck at {pct}% for {cust}, download link broken",
    ),
    t(
        "P3",
        "exports",
        "Ticket {ticket}: {cust} says the Excel export download returns an empty file",
    ),
    t(
        "P1",
        "mobile",
        "Ticket {ticket}: mobile app crashes on launch after the iOS {iosver} update for {cust}",
    ),
    t(
        "P2",
        "mobile",
        "Ticket {ticket}: Android app freezes when {cust} uploads attachments larger than {small} MB",
    ),
    t(
        "P2",
        "performance",
        "Ticket {ticket}: {cust} reports dashboards take over {small} s to load since this morning",
    ),
    t(
        "P4",
        "product",
        "Ticket {ticket}: feature request from {cust}: dark mode for the reporting page",
    ),
    t(
        "P3",
        "billing",
        "Ticket {ticket}: {cust} asks how to add {small} more seats to the {plan} plan",
    ),
    t(
        "P1",
        "api",
        "Ticket {ticket}: API returns a 500 error for {cust} when calling /api/v2/{resource}",
    ),
    t(
        "P2",
        "integrations",
        "Ticket {ticket}: webhook deliveries to the endpoint of {cust} failed with a timeout",
    ),
    t(
        "P3",
        "account",
        "Ticket {ticket}: {cust} wants to cancel the subscription and close the account",
    ),
    t(
        "P3",
        "notifications",
        "Ticket {ticket}: notification emails for {cust} land in the spam folder",
    ),
    t(
        "P2",
        "reports",
        "Ticket {ticket}: {cust} reports missing data in the weekly report of {date}",
    ),
    t(
        "P3",
        "integrations",
        "Ticket {ticket}: the Slack integration stopped posting alerts for {cust}",
    ),
    t(
        "P4",
        "billing",
        "Ticket {ticket}: {cust} needs an invoice copy with a VAT number for {month}",
    ),
    t(
        "P1",
        "escalation",
        "Ticket {ticket} escalated to tier 2: {cust} reports an outage, {n} users affected",
    ),
    t(
        "P4",
        "resolved",
        "Ticket {ticket} resolved: {cust} confirmed the fix, satisfaction score {score}/5",
    ),
    t(
        "P3",
        "privacy",
        "Ticket {ticket}: {cust} asks for a GDPR deletion of the data of user {user}",
    ),
];

/// Infrastructure events: cost, security, backup, cluster operations, compliance.
pub const SYSTEM_EVENTS: [Template; 20] = [
    t(
        "WARNING",
        "cost-monitor",
        "cost alert: cloud spend of account {acct} reached {pct}% of the {amount} USD monthly budget",
    ),
    t(
        "WARNING",
        "cost-monitor",
        "budget forecast over limit: team {team} projected at {amount} USD this month",
    ),
    t(
        "CRITICAL",
        "image-scanner",
        "security scan found {cve} (CVSS {cvss}) in image {image}:{ver}",
    ),
    t(
        "WARNING",
        "image-scanner",
        "vulnerability report: {small} critical CVEs open in namespace {ns}, oldest {cve}",
    ),
    t(
        "INFO",
        "backup",
        "nightly backup of {db} completed: {small} GB in {small} min, snapshot {snap}",
    ),
    t(
        "CRITICAL",
        "backup",
        "backup of {db} failed: upload error for snapshot {snap} to bucket {bucket}",
    ),
    t(
        "INFO",
        "dr-drill",
        "disaster recovery drill started: failover of {db} to region {region}",
    ),
    t(
        "INFO",
        "dr-drill",
        "disaster recovery drill finished: RTO {small} min, RPO {small} s, restore verified",
    ),
    t(
        "INFO",
        "cluster-upgrade",
        "kubernetes cluster {cluster} upgrade to {k8sver} started: rolling update of {small} nodes",
    ),
    t(
        "INFO",
        "cluster-upgrade",
        "rolling node upgrade in cluster {cluster}: node {node} drained and cordoned",
    ),
    t(
        "INFO",
        "compliance",
        "compliance audit: SOC2 control {control} evidence collected for team {team}",
    ),
    t(
        "WARNING",
        "compliance",
        "SOC2 audit finding: access review overdue for {small} accounts of team {team}",
    ),
    t(
        "WARNING",
        "node-monitor",
        "node {node} disk usage at {pct}% on /var/lib/containerd",
    ),
    t(
        "INFO",
        "autoscaler",
        "autoscaling group {asg} added {small} instances in {region} (cpu {pct}%)",
    ),
    t(
        "CRITICAL",
        "slo-monitor",
        "error budget of {svc} burning {small}x faster than allowed over the last hour",
    ),
    t(
        "INFO",
        "dns",
        "DNS change for {svc}.{domain} propagated in {n} s",
    ),
    t("WARNING", "iam", "IAM policy {policy} changed by {user}"),
    t(
        "CRITICAL",
        "secrets",
        "certificate rotation job failed for {small} secrets in namespace {ns}",
    ),
    t(
        "INFO",
        "change-calendar",
        "maintenance window scheduled for cluster {cluster} on {date} at {hour}:00 UTC",
    ),
    t(
        "WARNING",
        "firewall",
        "firewall rule {rule} blocked {n} connections from {ip}",
    ),
];
