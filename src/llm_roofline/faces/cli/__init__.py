"""The command line: main.py and the *_commands.py modules it registers; the only code that knows flags."""
