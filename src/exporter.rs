//! exporter (under construction)
