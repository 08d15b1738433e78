//! How a flow's outcome is counted in the metrics; both APIs count alike. Depends on `auth` and
//! `metrics` only.

use crate::auth::{AuthError, Refreshed};
use crate::metrics::{LoginOutcome, RefreshOutcome};

/// The metrics outcome of a refresh.
pub fn refresh_outcome(result: &Result<Refreshed, AuthError>) -> RefreshOutcome {
    use RefreshOutcome as O;
    match result {
        // Answered with a token issued before: a lost response, a race, a slow tab.
        Ok(r) if r.replayed() => O::GraceReplay,
        Ok(_) => O::Ok,
        Err(AuthError::MissingRefreshToken) => O::Missing,
        Err(AuthError::RefreshTokenReused) => O::ReuseRevoked,
        Err(AuthError::InvalidTokenUser) => O::InvalidUser,
        Err(AuthError::StoreUnavailable(_)) => O::StoreUnavailable,
        Err(AuthError::Internal(_)) => O::Error,
        Err(_) => O::Invalid,
    }
}

/// The metrics outcome of a login.
pub fn login_outcome<T>(result: &Result<T, AuthError>) -> LoginOutcome {
    use LoginOutcome as O;
    match result {
        Ok(_) => O::Ok,
        Err(AuthError::InvalidCredentials) => O::InvalidCredentials,
        Err(AuthError::TooManyLoginAttempts { .. }) => O::Throttled,
        Err(AuthError::StoreUnavailable(_)) => O::StoreUnavailable,
        Err(_) => O::Error,
    }
}
