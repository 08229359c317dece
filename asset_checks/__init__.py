"""Deterministic validation: check rules as data (rules/*.yaml) and the engines that decide them."""
