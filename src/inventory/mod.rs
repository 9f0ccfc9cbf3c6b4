//! inventory (under construction)
