//! Placeholder: replaced by the permission model tests.
