//! The dispatcher's rules, as pure functions with the time passed in: both
//! stores apply them inside their own transactions (with their own clock),
//! so the behaviour is written once and tested without I/O.

pub mod fairness;
pub mod health;
pub mod rate;
pub mod retry;
