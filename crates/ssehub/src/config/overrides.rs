//! The flags and `SSEHUB_*` variables of one config section, laid over the file.
//!
//! A section struct derives `clap::Args` beside serde (see the module doc of `config.rs`), but
//! clap cannot build it from the command line alone: a setting not given there must keep the
//! file's value, not become clap's. So `serve` flattens each section as an [`Overrides`],
//! which adds the section's flags (as `augment_args_for_update` does: none required) and keeps
//! only the values the user gave. [`Overrides::apply`] then writes them into the section
//! loaded from the file, through the `update_from_arg_matches` clap derives for it: the one
//! merge for every setting.

use std::marker::PhantomData;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, FromArgMatches};

/// The values of section `T`'s flags given on the command line or as variables.
#[derive(Debug, Clone)]
pub(crate) struct Overrides<T> {
    /// The matches of `serve`, without the values nobody gave.
    given: ArgMatches,
    section: PhantomData<fn() -> T>,
}

impl<T: FromArgMatches> Overrides<T> {
    /// Sets every field of `section` whose flag or variable was given; leaves the others.
    ///
    /// # Errors
    ///
    /// Only if `T`'s derive disagrees with its own arguments (a bug): clap has parsed and
    /// checked every value already.
    pub(crate) fn apply(&self, section: &mut T) -> Result<(), clap::Error> {
        section.update_from_arg_matches(&self.given)
    }
}

/// The matches without the values nobody gave: clap's defaults (a `bool` flag's `false`
/// included), and an on/off flag's `false` from its variable, so that such a flag, as before
/// sections had flags, can only switch its setting on.
fn given(matches: &ArgMatches) -> ArgMatches {
    let mut given = matches.clone();
    let ignored: Vec<String> = matches
        .ids()
        .map(|id| id.as_str())
        .filter(|&id| {
            let explicit = matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            let off = matches!(matches.try_get_one::<bool>(id), Ok(Some(false)));
            !explicit || off
        })
        .map(str::to_owned)
        .collect();
    for id in ignored {
        // The id comes from these matches, so clearing it cannot fail.
        let _ = given.try_clear_id(&id);
    }
    given
}

impl<T: Args> Args for Overrides<T> {
    fn augment_args(cmd: Command) -> Command {
        T::augment_args_for_update(cmd)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        T::augment_args_for_update(cmd)
    }
}

impl<T> FromArgMatches for Overrides<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Overrides {
            given: given(matches),
            section: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}
