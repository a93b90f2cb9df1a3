"""The batch job `cryptopredict analyze`: every active model at one hour, written to the
tables each family declares (`analyze`), by one writer per table (`writers`)."""
