//! Who a session belongs to. A server route records the caller's principal on the sessions
//! it creates and answers only that principal (or whoever the operator's `authorize` hook
//! lets in). Sessions created in-process have no caller: they belong to `Anonymous`, the
//! principal of every request to a server without authentication.

use crate::protocol::json::{JsonObject, push_json_string};

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Principal {
    /// No authentication is configured (or the session was created in-process).
    #[default]
    Anonymous,
    /// `validate()` accepted the credential without naming a user: a salted SHA-256 of the
    /// credential (hex), so equal credentials are one principal and none is kept in clear.
    Credential(String),
    /// `validate()` named the user (and maybe the tenant): both together identify it.
    User { user_id: String, tenant_id: Option<String> },
}

impl Principal {
    /// One string per principal, never shared by two (rate-limit buckets are keyed on it):
    /// user and tenant ids are JSON-quoted, so no id can pose as another.
    pub fn key(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".to_string(),
            Principal::Credential(hash) => format!("credential:{hash}"),
            Principal::User { user_id, tenant_id } => {
                let mut key = String::from("user:");
                if let Some(tenant) = tenant_id {
                    push_json_string(&mut key, tenant);
                    key.push('/');
                }
                push_json_string(&mut key, user_id);
                key
            }
        }
    }

    /// What the operator's hooks see: `{id, type, userId?, tenantId?}`.
    pub fn to_json(&self) -> String {
        let (kind, user_id, tenant_id) = match self {
            Principal::Anonymous => ("anonymous", None, None),
            Principal::Credential(_) => ("credential", None, None),
            Principal::User { user_id, tenant_id } => ("user", Some(user_id), tenant_id.as_ref()),
        };
        JsonObject::new()
            .field("id", &self.key())
            .field("type", kind)
            .opt_field("userId", user_id)
            .opt_field("tenantId", tenant_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(user_id: &str, tenant_id: Option<&str>) -> Principal {
        Principal::User { user_id: user_id.into(), tenant_id: tenant_id.map(Into::into) }
    }

    #[test]
    fn keys_are_unambiguous() {
        assert_eq!(user("a", None).key(), "user:\"a\"");
        assert_eq!(user("b", Some("t")).key(), "user:\"t\"/\"b\"");
        // A user id that looks like a tenant/user pair stays a different principal.
        assert_ne!(user("t\"/\"b", None).key(), user("b", Some("t")).key());
        assert_ne!(user("x", Some("t1")), user("x", Some("t2")));
        assert_eq!(Principal::Anonymous.key(), "anonymous");
        assert_eq!(
            user("u", Some("t")).to_json(),
            r#"{"id":"user:\"t\"/\"u\"","type":"user","userId":"u","tenantId":"t"}"#
        );
        assert_eq!(
            Principal::Credential("ab".into()).to_json(),
            r#"{"id":"credential:ab","type":"credential"}"#
        );
    }
}
