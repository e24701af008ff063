//! Authentication (bearer tokens, compared in constant time) and authorization.
//!
//! Users: the cluster admin (group `system:masters`, allowed everything) and node
//! identities (`system:node:<name>`, group `system:nodes`), which the NodeRestriction
//! rules confine to their own Node, Lease and the pods bound to them.

use std::sync::RwLock;

use http::HeaderMap;
use subtle::ConstantTimeEq;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn admin() -> Self {
        User {
            name: "admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    pub fn node(name: &str) -> Self {
        User {
            name: format!("system:node:{name}"),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
        }
    }

    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }

    /// The node name of a node identity.
    pub fn node_name(&self) -> Option<&str> {
        if self.groups.iter().any(|g| g == "system:nodes") {
            self.name.strip_prefix("system:node:")
        } else {
            None
        }
    }
}

/// The token table. Tokens can be added while the server runs (node join).
#[derive(Default)]
pub struct Authenticator {
    tokens: RwLock<Vec<(Vec<u8>, User)>>,
}

impl Authenticator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_token(&self, token: &str, user: User) {
        if let Ok(mut t) = self.tokens.write() {
            t.push((token.as_bytes().to_vec(), user));
        }
    }

    /// Checks every known token (no early exit on a match position), so response time
    /// does not reveal which token prefix was right.
    pub fn authenticate_token(&self, presented: &[u8]) -> Option<User> {
        let tokens = self.tokens.read().ok()?;
        let mut found = None;
        for (t, u) in tokens.iter() {
            let eq: bool = t.len() == presented.len() && bool::from(t.as_slice().ct_eq(presented));
            if eq && found.is_none() {
                found = Some(u.clone());
            }
        }
        found
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Option<User> {
        let h = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = h.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = token.trim();
        if token.is_empty() {
            return None;
        }
        self.authenticate_token(token.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_authenticate_their_user_only() {
        let a = Authenticator::new();
        a.add_token("secret-admin", User::admin());
        a.add_token("node-token", User::node("n1"));
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer secret-admin".parse().unwrap(),
        );
        assert!(a.authenticate(&h).unwrap().is_admin());
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer node-token".parse().unwrap(),
        );
        assert_eq!(a.authenticate(&h).unwrap().node_name(), Some("n1"));
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer secret-admiN".parse().unwrap(),
        );
        assert!(a.authenticate(&h).is_none());
        h.insert(
            http::header::AUTHORIZATION,
            "Basic secret-admin".parse().unwrap(),
        );
        assert!(a.authenticate(&h).is_none());
        assert!(a.authenticate(&HeaderMap::new()).is_none());
    }
}
