"""Helpers for Pantau's end-to-end tests: a real mosquitto, pymodbus devices, mbpoll, and the gateway binary."""
