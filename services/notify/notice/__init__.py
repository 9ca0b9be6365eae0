"""The notice period (公示期): five working days on the mainland calendar, ending 17:00 Beijing time."""
