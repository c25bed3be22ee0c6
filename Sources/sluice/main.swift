import SluiceCLI

SluiceCommand.start()
