"""The wizard's screens and modals, one per file. They read and fill the
App's WizardState and call the engines (checks/, remediations/); no host
logic lives here."""
