//! Statement splitting and positions.
