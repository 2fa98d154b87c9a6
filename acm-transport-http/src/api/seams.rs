//! acm's own implementations of the APIs' two seams: access tokens checked by the
//! [`TokenVerifier`], partners known by [`PartnerTrust`](crate::PartnerTrust).

use acm_core::McServiceId;

use super::{AuthFailure, Authenticator};
use crate::auth::TokenVerifier;

impl Authenticator for TokenVerifier {
    fn authenticate(&self, authorization: Option<&str>) -> Result<McServiceId, AuthFailure> {
        self.verify_header(authorization).map_err(|e| AuthFailure {
            code: e.code(),
            detail: e.to_string(),
        })
    }
}
