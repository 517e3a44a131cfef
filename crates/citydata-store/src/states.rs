//! States and kinds of store records: enums stored as (and serialized to) the same text as
//! always, so that database contents and JSON stay as they were.

/// An enum stored as text: `as_str`, `parse` (`None` for an unknown text), `Display`, and
/// serde as the same strings.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Where an ingest is: running on a node, or how it ended.
    IngestState {
        Running = "running",
        Committed = "committed",
        /// Refused by its policy (nothing written).
        Rejected = "rejected",
        Failed = "failed",
        /// Its node stopped or lost the lease before it ended; settled by another node.
        Interrupted = "interrupted",
    }
}

text_enum! {
    /// A 共享申请's state.
    RequestState {
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
        Withdrawn = "withdrawn",
    }
}

text_enum! {
    /// Who a grant is for: a department (by code) or a user (by id).
    GranteeKind {
        Department = "department",
        User = "user",
    }
}

text_enum! {
    /// What a kept revision of a resource did.
    RevisionAction {
        Create = "create",
        Update = "update",
        Publish = "publish",
        Withdraw = "withdraw",
    }
}

text_enum! {
    /// A webhook delivery: waiting for (another) attempt, delivered, or failed for good.
    DeliveryState {
        Pending = "pending",
        Delivered = "delivered",
        /// Retries exhausted.
        Failed = "failed",
    }
}
