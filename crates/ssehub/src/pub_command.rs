//! `ssehub pub TOPIC [DATA]`: publish one event and print its id.

use std::io::Read as _;

use anyhow::Context as _;
use ssehub_client::PublishEvent;

use crate::cli::PubArgs;

pub(crate) fn run(args: &PubArgs) -> anyhow::Result<()> {
    let data = match args.data.as_deref() {
        None | Some("-") => {
            let mut data = String::new();
            std::io::stdin()
                .read_to_string(&mut data)
                .context("cannot read the event data from stdin (it must be UTF-8)")?;
            // `echo hello | ssehub pub t` publishes "hello": one final line break is the
            // shell's, not the data's.
            if data.ends_with('\n') {
                data.pop();
                if data.ends_with('\r') {
                    data.pop();
                }
            }
            data
        }
        Some(data) => data.to_string(),
    };
    let event = PublishEvent {
        topic: args.topic.clone(),
        data,
        event: args.event.clone(),
        id: args.id.clone(),
    };
    let client = args.hub.client()?;
    let runtime = crate::client_runtime()?;
    let ids = runtime.block_on(client.publish(std::slice::from_ref(&event)))?;
    let id = ids.first().context("the hub answered without an id")?;
    println!("{id}");
    Ok(())
}
