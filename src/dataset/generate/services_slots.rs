//! The values the `{slot}`s of the services templates (`services_templates.rs`) take; numbers,
//! dates and addresses are drawn by the renderer (`services.rs`).

pub const SERVICES: [&str; 14] = [
    "checkout",
    "payments",
    "orders",
    "inventory",
    "search",
    "auth",
    "users",
    "cart",
    "shipping",
    "notifications",
    "recommendations",
    "pricing",
    "catalog",
    "gateway",
];
pub const RESOURCES: [&str; 8] = [
    "orders",
    "users",
    "products",
    "carts",
    "invoices",
    "sessions",
    "shipments",
    "reviews",
];
pub const RPCS: [&str; 6] = ["Get", "List", "Create", "Reserve", "Authorize", "Quote"];
pub const DATABASES: [&str; 6] = [
    "orders-db",
    "users-db",
    "payments-db",
    "inventory-db",
    "analytics-db",
    "catalog-db",
];
pub const TABLES: [&str; 6] = [
    "orders",
    "order_items",
    "users",
    "payments",
    "stock",
    "prices",
];
pub const DOMAINS: [&str; 3] = ["internal.example.com", "prod.example.net", "example.io"];
pub const NAMESPACES: [&str; 5] = ["prod", "staging", "payments", "platform", "data"];
pub const ZONES: [&str; 6] = [
    "eu-west-1a",
    "eu-west-1b",
    "eu-west-1c",
    "us-east-1a",
    "us-east-1b",
    "us-east-1c",
];
pub const REGIONS: [&str; 4] = ["eu-west-1", "us-east-1", "us-west-2", "ap-southeast-1"];
pub const EVENTS: [&str; 5] = [
    "OrderPlaced",
    "PaymentCaptured",
    "StockReserved",
    "UserRegistered",
    "ShipmentSent",
];
pub const KAFKA_TOPICS: [&str; 4] = ["orders.v1", "payments.v1", "inventory.v2", "audit.v1"];
pub const AUTH_METHODS: [&str; 4] = ["password", "google-oauth", "saml-sso", "api-token"];
pub const FLAGS: [&str; 4] = [
    "new-checkout",
    "fast-search",
    "one-click-pay",
    "beta-dashboard",
];
pub const ERROR_CODES: [&str; 6] = [
    "E1042",
    "E2001",
    "card_declined",
    "AUTH-403",
    "SAML-17",
    "E5003",
];
pub const JOBS: [&str; 5] = [
    "reindex-products",
    "send-digests",
    "expire-carts",
    "sync-ledger",
    "compact-events",
];
pub const CUSTOMERS: [&str; 12] = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Stark Logistics",
    "Wayne Retail",
    "Hooli",
    "Vandelay Imports",
    "Soylent Foods",
    "Tyrell Systems",
    "Cyberdyne Labs",
    "Wonka Industries",
];
pub const PLANS: [&str; 4] = ["Starter", "Team", "Business", "Enterprise"];
pub const MONTHS: [&str; 6] = ["January", "February", "March", "April", "May", "June"];
pub const TEAMS: [&str; 6] = [
    "platform", "payments", "data", "search", "growth", "security",
];
pub const IMAGES: [&str; 5] = [
    "registry.example.com/checkout",
    "registry.example.com/gateway",
    "library/nginx",
    "library/postgres",
    "registry.example.com/search",
];
pub const BUCKETS: [&str; 3] = ["backups-eu", "backups-us", "db-snapshots"];
pub const CLUSTERS: [&str; 4] = ["prod-eu-1", "prod-us-1", "staging-1", "data-1"];
pub const K8S_VERSIONS: [&str; 3] = ["1.29.4", "1.30.2", "1.31.0"];
pub const CONTROLS: [&str; 5] = ["CC6.1", "CC6.2", "CC7.2", "CC8.1", "A1.2"];
pub const POLICIES: [&str; 4] = [
    "s3-read-only",
    "prod-admin",
    "ci-deployer",
    "billing-viewer",
];
pub const IOS_VERSIONS: [&str; 3] = ["17.5", "18.0", "18.1"];
/// Ticket intake channels, the `location` of a ticket.
pub const CHANNELS: [&str; 4] = ["email", "chat", "phone", "web"];
