//! In-process tests of the connection layer: [`ssehub_server::serve`] on 127.0.0.1:0 with a
//! small router, attacked over plain TCP.

mod differential;
mod hostile;
mod util;
