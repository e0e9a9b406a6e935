pub mod diff;
pub mod duration;
pub mod hostname;
pub mod manifest;
pub mod model;
pub mod selector;
pub mod translate;
pub mod validate;
