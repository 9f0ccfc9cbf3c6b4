//! resolve (under construction)
