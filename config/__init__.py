"""The pipeline's settings (``DOM_`` environment variables): below every other package but the
contract, so that the stages, the connectors and the command line all read them without
importing one another."""
