//! reduce (under construction)
