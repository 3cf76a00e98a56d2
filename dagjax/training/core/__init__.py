"""The pure training core: compile's arguments resolved once, the train state, and the step fit runs."""
